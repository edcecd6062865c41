/**
 * HTTP to the Quilt catalog and registry: timeouts, retries on 5xx and network failures with
 * backoff, and errors that say which service failed. Bearer tokens are passed in by the caller
 * (from the runtime context), never found here.
 */
import http from 'node:http';
import https from 'node:https';
import { noteAnswer } from '../core/call-scope.js';
import { ToolError } from '../core/errors.js';
import { redact } from '../core/redact.js';

/**
 * node:http rather than fetch: fetch (undici) costs about three times the CPU per catalog request,
 * which was most of search_catalog's overhead. Keep-alive agents reuse connections (idle sockets are
 * unref'd, so they never hold the process open).
 */
const AGENTS: Record<string, http.Agent> = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

/**
 * Sockets for looking up who a bearer belongs to (Quilt API keys) before the caller is known: few,
 * and apart from AGENTS, so a flood of unknown keys queues here instead of taking the connections
 * tenants' catalog calls use.
 */
const LOOKUP_AGENTS: Record<string, http.Agent> = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 8 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 8 }),
};

/** Catalog and registry answers are small JSON; anything larger is not a Quilt catalog's answer. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

class ResponseTooLarge extends Error {}

interface Answer {
  status: number;
  text: string;
  /** Retry-After, in ms (seconds or an HTTP date), when the answer gave one. */
  retryAfterMs?: number | undefined;
}

/** Waiting longer than this for a Retry-After would outlast the caller's patience; retry sooner. */
const MAX_RETRY_AFTER_MS = 5_000;

function retryAfterMs(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const ms = /^\d+(\.\d+)?$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

class RequestTimedOut extends Error {}
class RequestCancelled extends Error {}

/**
 * One request: its answer, or RequestTimedOut after `timeoutMs`, RequestCancelled when `cancel`
 * aborts, ResponseTooLarge, or the network error. A timer and one abort listener rather than
 * AbortSignal.timeout/any, which cost more than the rest of the request's JavaScript.
 */
function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
  cancel: AbortSignal | undefined,
  pool: RequestOptions['pool'],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const agent = (pool === 'lookups' ? LOOKUP_AGENTS : AGENTS)[url.protocol];
    if (!agent) return reject(Object.assign(new Error(`unsupported protocol ${url.protocol}`), { code: 'ERR_INVALID_PROTOCOL' }));
    if (cancel?.aborted) return reject(new RequestCancelled());
    let settled = false;
    const settle = (done: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cancel?.removeEventListener('abort', onCancel);
      done();
    };
    const fail = (err: unknown) => settle(() => reject(err));
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy();
            fail(new ResponseTooLarge());
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          noteAnswer();
          settle(() => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), retryAfterMs: retryAfterMs(res.headers['retry-after']) }));
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' }));
        });
      },
    );
    const stop = (err: Error) => {
      fail(err);
      req.destroy();
    };
    const timer = setTimeout(() => stop(new RequestTimedOut()), timeoutMs);
    timer.unref();
    const onCancel = () => stop(new RequestCancelled());
    cancel?.addEventListener('abort', onCancel, { once: true });
    req.on('error', fail);
    req.end(body);
  });
}

export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly url: string,
    readonly body: string,
  ) {
    super(`HTTP ${status} from ${safeUrl(url)}`);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Per attempt. */
  timeoutMs?: number;
  /** Extra attempts after a network failure, a 5xx or a 429 (not for other 4xx). */
  retries?: number;
  /** Names the service in messages: "Quilt registry", "Quilt catalog". */
  service: string;
  signal?: AbortSignal | undefined;
  /** Which sockets to use: the shared ones, or the few for lookups before a caller is known. */
  pool?: 'shared' | 'lookups' | undefined;
}

/** The origin and path of a URL, never its query (which may hold credentials). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function requestJson<T = unknown>(url: string, opts: RequestOptions): Promise<T> {
  const retries = opts.retries ?? 2;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let lastError: unknown;
  let wait: number | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      const backoff = Math.min(2_000, 150 * 4 ** (attempt - 1)) * (0.75 + Math.random() / 2);
      await sleep(Math.max(backoff, Math.min(wait ?? 0, MAX_RETRY_AFTER_MS)));
    }
    wait = undefined;
    let res: Answer;
    try {
      res = await send(new URL(url), opts.method ?? 'GET', { accept: 'application/json', ...opts.headers }, opts.body, timeoutMs, opts.signal, opts.pool);
    } catch (err) {
      if (err instanceof ResponseTooLarge) {
        throw new ToolError(
          'upstream_error',
          `The ${opts.service} at ${safeUrl(url)} answered with more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB, which no catalog answer is.`,
          'Check that the URL points at a Quilt catalog.',
        );
      }
      if (err instanceof RequestCancelled) throw new ToolError('timeout', `The request to the ${opts.service} was cancelled.`);
      lastError = err instanceof RequestTimedOut
        ? new ToolError(
            'timeout',
            `The ${opts.service} at ${safeUrl(url)} did not answer within ${Math.round(timeoutMs / 1000)} s.`,
            'Check that the catalog is up and reachable from here, then retry.',
          )
        : new ToolError(
            'unreachable',
            `Could not reach the ${opts.service} at ${new URL(url).origin} (${describeNetworkError(err)}).`,
            'Check the catalog URL (QUILT_CATALOG_URL or `quilt3 config`), the network and any proxy, then retry.',
          );
      continue;
    }
    const text = res.text;
    if (res.status >= 300 && res.status < 400) {
      // Never followed: a redirect could carry the bearer token to another host.
      throw new ToolError(
        'upstream_error',
        `The ${opts.service} at ${safeUrl(url)} answered with a redirect (HTTP ${res.status}); quilt-mcp does not follow redirects, so that tokens go only where they were meant to.`,
        'Use the final URL of the catalog (QUILT_CATALOG_URL or `quilt3 config`), with https:// and without a trailing path.',
      );
    }
    if (res.status >= 500 || res.status === 429) {
      lastError = new HttpStatusError(res.status, url, text);
      wait = res.retryAfterMs;
      continue;
    }
    if (res.status < 200 || res.status >= 300) throw new HttpStatusError(res.status, url, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ToolError(
        'upstream_error',
        `The ${opts.service} at ${safeUrl(url)} answered with something that is not JSON.`,
        'Check that the URL points at a Quilt catalog.',
      );
    }
  }
  if (lastError instanceof HttpStatusError && lastError.status === 429) {
    throw new ToolError(
      'throttled',
      `The ${opts.service} at ${safeUrl(url)} is limiting requests (HTTP 429, ${retries + 1} attempts).`,
      'Wait a moment and retry.',
    );
  }
  if (lastError instanceof HttpStatusError) {
    throw new ToolError(
      'upstream_error',
      `The ${opts.service} failed (HTTP ${lastError.status} from ${safeUrl(url)}) after ${retries + 1} attempts: ${redact(lastError.body.slice(0, 200))}`,
      'The service has a problem; retry later or tell its administrator.',
    );
  }
  throw lastError;
}

function describeNetworkError(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? redact(err.message) : 'network error';
}
