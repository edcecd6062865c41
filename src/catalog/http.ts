/**
 * HTTP to the Quilt catalog and registry: timeouts, retries on 5xx and network failures with
 * backoff, and errors that say which service failed. Bearer tokens are passed in by the caller
 * (from the runtime context), never found here.
 */
import { ToolError } from '../errors.js';
import { redact } from '../redact.js';

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
  /** Extra attempts after a network failure or 5xx (not for 4xx). */
  retries?: number;
  /** Names the service in messages: "Quilt registry", "Quilt catalog". */
  service: string;
  signal?: AbortSignal | undefined;
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
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(2_000, 150 * 4 ** (attempt - 1)) * (0.75 + Math.random() / 2));
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
    let res: Response;
    try {
      res = await fetch(url, {
        method: opts.method ?? 'GET',
        headers: { accept: 'application/json', ...opts.headers },
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        signal,
        redirect: 'error',
      });
    } catch (err) {
      if (opts.signal?.aborted) throw new ToolError('timeout', `The request to the ${opts.service} was cancelled.`);
      lastError = timeout.aborted
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
    const text = await res.text();
    if (res.status >= 500) {
      lastError = new HttpStatusError(res.status, url, text);
      continue;
    }
    if (!res.ok) throw new HttpStatusError(res.status, url, text);
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
