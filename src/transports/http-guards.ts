/**
 * What the HTTP transport checks before a request costs anything: who may call from a browser
 * (Host and Origin), how many requests and connections run at once (per process and per caller),
 * and how long and how large a body may be.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config.js';

/** A request without a token may only be a handshake (initialize, tools/list...): small. */
export const TOKENLESS_BODY_BYTES = 64 * 1024;
/** A body must arrive within this, however slowly its bytes trickle in. */
export const BODY_TIMEOUT_MS = 10_000;

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

export class BodyError extends Error {
  constructor(
    readonly status: 408 | 413,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a body of at most `limit` bytes within `timeoutMs`. A declared Content-Length over the
 * limit is refused before a byte is read; on any refusal the caller answers and closes the
 * connection (the rest of the body is never read).
 */
export function readBody(req: http.IncomingMessage, limit: number, timeoutMs = BODY_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new BodyError(413, `The request body (${declared} bytes) is larger than ${limit} bytes.`));
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) done(new BodyError(413, `The request body is larger than ${limit} bytes.`));
      else chunks.push(c);
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    const timer = setTimeout(
      () => done(new BodyError(408, `The request body did not arrive within ${Math.round(timeoutMs / 1000)} s.`)),
      timeoutMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Caps on work in progress: `max` requests per process, and a quarter of that per caller (a token's
 * user, or all tokenless requests together), so neither one user nor a tokenless flood can take
 * every slot.
 */
export class Admission {
  private total = 0;
  private readonly perKey = new Map<string, number>();
  readonly perKeyMax: number;

  constructor(readonly max: number) {
    this.perKeyMax = Math.max(1, Math.floor(max / 4));
  }

  /** A release function, or undefined when the process or this caller is at its cap. */
  tryAcquire(key: string): (() => void) | undefined {
    const mine = this.perKey.get(key) ?? 0;
    if (this.total >= this.max || mine >= this.perKeyMax) return undefined;
    this.total++;
    this.perKey.set(key, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perKey.get(key) ?? 1) - 1;
      if (left > 0) this.perKey.set(key, left);
      else this.perKey.delete(key);
    };
  }

  get inFlight(): number {
    return this.total;
  }
}

/** Answers connections beyond `max` with a 503 and closes them, before any request is parsed. */
export function capConnections(server: http.Server, max: number, onRefused: () => void): void {
  let open = 0;
  const body = JSON.stringify({ error: 'busy', error_description: 'Too many open connections to this server; retry shortly.' });
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      onRefused();
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    open++;
    socket.once('close', () => open--);
  });
}

/**
 * Host and Origin rules. Host (DNS-rebinding protection): loopback names in desktop mode, plus
 * MCP_ALLOWED_HOSTS; in JWT mode any Host unless MCP_ALLOWED_HOSTS is set (a load balancer sits in
 * front). Origin (the MCP transport spec: servers must validate it): a request from a browser page
 * is served only when its origin is allowed; requests without Origin (non-browser clients) are.
 */
export class OriginPolicy {
  private hosts: Set<string> | undefined;
  private readonly origins: Set<string>;
  private readonly originHosts: Set<string>;

  constructor(private readonly config: Config) {
    const derived: string[] = [];
    if (config.quilt.catalogUrl) derived.push(new URL(config.quilt.catalogUrl).origin);
    // The catalog hosts the operator trusts with catalog tokens serve the Quilt web app over HTTPS.
    for (const h of config.quilt.allowedHosts) derived.push(`https://${h}`);
    this.origins = new Set([...config.http.allowedOrigins, ...derived].map((o) => o.toLowerCase()));
    this.originHosts = new Set(config.http.allowedHosts.map((h) => h.toLowerCase()));
  }

  /** Called once the port is known (port 0 picks one). */
  listening(port: number): void {
    const configured = this.config.http.allowedHosts.map((h) => h.toLowerCase());
    if (this.config.mode === 'jwt' && configured.length === 0) {
      this.hosts = undefined;
    } else {
      this.hosts = new Set([...LOOPBACK.flatMap((h) => [h, `${h}:${port}`]), ...configured]);
    }
    if (this.config.mode === 'desktop') {
      for (const h of LOOPBACK) {
        this.origins.add(`http://${h}:${port}`);
        this.origins.add(`http://${h}`);
      }
    }
  }

  /** Why the request is refused, or undefined when it may go on. */
  refusal(req: http.IncomingMessage): string | undefined {
    const host = (req.headers.host ?? '').toLowerCase();
    if (this.hosts && !this.hosts.has(host)) return `Host "${host}" is not allowed (DNS rebinding protection)`;
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) {
      return `Origin "${origin}" is not allowed: browser pages may call this server only from origins listed in MCP_ALLOWED_ORIGINS`;
    }
    return undefined;
  }

  originAllowed(origin: string): boolean {
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return false; // "null" (sandboxed frames, file://) and garbage
    }
    const o = u.origin.toLowerCase();
    return this.origins.has(o) || this.originHosts.has(u.host.toLowerCase());
  }

  /** CORS headers for an allowed browser origin (nothing for non-browser requests). */
  corsHeaders(req: http.IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined || !this.originAllowed(origin)) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-expose-headers': 'mcp-session-id, mcp-protocol-version, www-authenticate',
      vary: 'Origin',
    };
  }
}
