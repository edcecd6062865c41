/**
 * An HTTP proxy that plays the network between the server and a service (S3, STS, the catalog,
 * Athena), as it is on a good day and on a bad one.
 *
 * A good day: an answer comes back no sooner than the round trip after its request arrived (the
 * service's own time to answer is part of a real round trip, so the target's is absorbed in it
 * rather than added), a new connection costs one more round trip (the TCP handshake), and bodies can
 * be held to a bandwidth shared by all connections (one link up, one down).
 *
 * A bad day: a request can meet a fault instead: an error status in the service's own dialect (500,
 * 503 SlowDown with Retry-After, 429...), the connection reset before the request is forwarded or
 * after the service did the work (the reply lost), reset midway through the answer's body, a body
 * cut short against its Content-Length, a slow trickle, or a hang (no answer until the caller gives
 * up). Credentials expiring after N requests and clocks that disagree are a per-request choice of
 * the test (see `conditions`), a DNS failure is an endpoint that does not resolve.
 *
 * What happens to a request is decided per request by `conditions(req)`, from its method, URL and
 * headers, so a test can fault one tenant's requests, one operation, or the first attempt of each
 * request (the AWS SDK numbers its attempts in `amz-sdk-request`). Every exchange is recorded, so a
 * test can count the requests of a call and the round trips it waited for one after another.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** Answered by the proxy: `code` in the service's dialect (S3/STS XML, Athena JSON, catalog JSON). */
  | { kind: 'status'; status: number; code: string; message?: string; retryAfterSeconds?: number }
  /** The connection is reset once the request has arrived; nothing reaches the service. */
  | { kind: 'reset-before' }
  /** The service does the work and answers; the connection is reset before any byte of the answer. */
  | { kind: 'reset-after' }
  /** The status line, headers and half the body, then a reset. */
  | { kind: 'reset-midway' }
  /** The headers (with the full Content-Length) and half the body, then the connection closed cleanly. */
  | { kind: 'short-body' }
  /** The answer, its body dribbled at this many bytes per second. */
  | { kind: 'trickle'; bytesPerSecond: number }
  /** No answer, ever: the request is not forwarded, and the connection stays open until the caller closes it. */
  | { kind: 'hang' };

export type FaultKind = Fault['kind'];

export interface Conditions {
  /** Round trip of every request: its answer starts no sooner than this after the request arrived. */
  delayMs: number;
  /** Added to the first request on a new connection (TCP handshake); default: delayMs. */
  connectMs?: number;
  /** Bandwidth of the link, each direction, shared by all connections (bytes/s); default unlimited. */
  bytesPerSecond?: number;
  /** What goes wrong with this request, if anything. */
  fault?: Fault | undefined;
}

/** How the service says an error: S3's and STS's XML, Athena's JSON 1.1, the catalog's JSON. */
export type Dialect = 's3' | 'sts' | 'athena' | 'json';

export interface Exchange {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** performance.now() when the request reached the proxy, and when its answer was fully sent back (or cut). */
  start: number;
  end: number;
  status?: number;
  /** The fault the request met. */
  fault?: FaultKind;
}

export interface NetworkProxy {
  endpoint: string;
  /** Finished exchanges, in the order they finished. */
  exchanges: Exchange[];
  /** Requests forwarded and not yet answered. */
  inFlight(): number;
  /** Those requests. */
  pending(): Exchange[];
  /** Changes the conditions for requests from now on. */
  set(conditions: Conditions | ((req: http.IncomingMessage) => Conditions)): void;
  close(): Promise<void>;
}

/**
 * The longest chain of exchanges each of which started after the previous one had ended: how
 * many round trips the caller waited for one after another (greedy by end time gives the longest).
 */
export function sequentialRoundTrips(exchanges: readonly Pick<Exchange, 'start' | 'end'>[]): number {
  let chain = 0;
  let last = -Infinity;
  for (const x of [...exchanges].sort((a, b) => a.end - b.end)) {
    if (x.start >= last) {
      chain++;
      last = x.end;
    }
  }
  return chain;
}

/** One direction of the link: chunks leave in order, each after the delay and its time on the wire. */
class Link {
  private free = 0;

  /** When a chunk of `bytes` that may leave at `at` has passed (ms, performance.now() clock). */
  passAt(at: number, bytes: number, rate: number | undefined): number {
    if (!rate) return at;
    this.free = Math.max(this.free, at) + (bytes / rate) * 1000;
    return this.free;
  }
}

const sleepUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - performance.now())));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Sends `src`'s chunks to `write` in order, each no sooner than `notBefore` and after its time on
 * `link`, and after `first`; resolves when the last one was handed over.
 */
function shapedPipe(src: NodeJS.ReadableStream, link: Link, notBefore: number, rate: number | undefined, write: (chunk: Buffer) => void, first = Promise.resolve()): Promise<void> {
  let chain = first;
  return new Promise<void>((resolve, reject) => {
    src.on('data', (c: Buffer) => {
      const at = link.passAt(Math.max(performance.now(), notBefore), c.length, rate);
      chain = chain.then(() => sleepUntil(at)).then(() => write(c));
    });
    src.on('end', () => void chain.then(resolve));
    src.on('error', reject);
  });
}

const xmlText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An error answer as the service would send it. */
function errorAnswer(dialect: Dialect, f: Extract<Fault, { kind: 'status' }>): { headers: http.OutgoingHttpHeaders; body: string } {
  const message = f.message ?? `${f.code} (injected by the test's network proxy)`;
  const retryAfter = f.retryAfterSeconds !== undefined ? { 'retry-after': String(f.retryAfterSeconds) } : {};
  switch (dialect) {
    case 's3':
      return {
        headers: { 'content-type': 'application/xml', ...retryAfter },
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlText(f.code)}</Code><Message>${xmlText(message)}</Message><RequestId>FAULT</RequestId><HostId>FAULT</HostId></Error>`,
      };
    case 'sts':
      return {
        headers: { 'content-type': 'text/xml', ...retryAfter },
        body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${f.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${xmlText(f.code)}</Code><Message>${xmlText(message)}</Message></Error><RequestId>fault</RequestId></ErrorResponse>`,
      };
    case 'athena':
      return {
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': f.code, ...retryAfter },
        body: JSON.stringify({ __type: f.code, message }),
      };
    case 'json':
      return { headers: { 'content-type': 'application/json', ...retryAfter }, body: JSON.stringify({ message }) };
  }
}

export async function startNetworkProxy(target: string, initial: Conditions, { dialect = 's3' }: { dialect?: Dialect } = {}): Promise<NetworkProxy> {
  let conditionsOf: (req: http.IncomingMessage) => Conditions = () => initial;
  const exchanges: Exchange[] = [];
  let inFlight = 0;
  const open = new Set<Exchange>();
  const up = new Link();
  const down = new Link();
  const fresh = new WeakSet<Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

  const server = http.createServer((req, res) => {
    const start = performance.now();
    const c = conditionsOf(req);
    const fault = c.fault;
    inFlight++;
    const x: Exchange = { method: req.method ?? 'GET', url: req.url ?? '', headers: req.headers, start, end: start, ...(fault ? { fault: fault.kind } : {}) };
    open.add(x);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      inFlight--;
      open.delete(x);
      x.end = performance.now();
      exchanges.push(x);
    };
    // The handshake of a new connection comes before its first request.
    const connect = fresh.has(req.socket) ? (c.connectMs ?? c.delayMs) : 0;
    fresh.delete(req.socket);
    const answerAt = start + connect + c.delayMs;
    /** A reset (RST), as a crashed proxy or a dropped connection gives, never a clean close. */
    const reset = () => {
      finish();
      req.socket.resetAndDestroy();
    };
    const bodyArrived = new Promise<void>((resolve) => {
      req.on('end', resolve);
      req.on('error', () => resolve());
    });

    // Faults answered here, without the service.
    if (fault?.kind === 'hang') {
      req.resume();
      res.on('close', finish);
      return;
    }
    if (fault?.kind === 'reset-before') {
      req.resume();
      void bodyArrived.then(() => sleepUntil(answerAt)).then(reset);
      return;
    }
    if (fault?.kind === 'status') {
      req.resume();
      void bodyArrived.then(() => sleepUntil(answerAt)).then(() => {
        const { headers, body } = errorAnswer(dialect, fault);
        x.status = fault.status;
        res.writeHead(fault.status, { ...headers, 'content-length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body, finish);
      });
      return;
    }

    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers, agent }, (answer) => {
      if (fault) {
        void faultyAnswer(answer, fault).catch(() => {
          finish();
          res.destroy();
        });
        return;
      }
      const headers = sleepUntil(answerAt).then(() => {
        x.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
      });
      shapedPipe(answer, down, answerAt, c.bytesPerSecond, (chunk) => res.write(chunk), headers)
        .then(() => res.end(finish))
        .catch(() => {
          finish();
          res.destroy();
        });
    });

    /** The service's answer, spoilt as `fault` says (the service has done the work either way). */
    async function faultyAnswer(answer: http.IncomingMessage, f: Fault): Promise<void> {
      const chunks: Buffer[] = [];
      for await (const chunk of answer as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = Buffer.concat(chunks);
      await sleepUntil(answerAt);
      x.status = answer.statusCode;
      if (f.kind === 'reset-after') return reset();
      // A HEAD's Content-Length is the object's, not its (empty) body's.
      const headers = { ...answer.headers, ...(req.method === 'HEAD' ? {} : { 'content-length': String(body.length) }) };
      delete headers['transfer-encoding'];
      res.writeHead(answer.statusCode ?? 502, headers);
      if (req.method === 'HEAD' || body.length === 0) {
        // Nothing to cut: a reset after the headers still loses the answer's end.
        if (f.kind === 'reset-midway') {
          res.flushHeaders();
          await sleep(5);
          return reset();
        }
        return void res.end(finish);
      }
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (f.kind === 'reset-midway' || f.kind === 'short-body') {
        res.write(half);
        await sleep(5);
        if (f.kind === 'reset-midway') return reset();
        // A clean close (FIN) short of the Content-Length promised.
        finish();
        req.socket.end();
        return;
      }
      if (f.kind === 'trickle') {
        const step = Math.max(1, Math.round(f.bytesPerSecond / 10));
        for (let at = 0; at < body.length; at += step) {
          if (res.destroyed) return finish();
          res.write(body.subarray(at, at + step));
          await sleep(100);
        }
        return void res.end(finish);
      }
      res.end(body, finish);
    }

    upstream.on('error', () => {
      if (res.headersSent) {
        finish();
        return void res.destroy();
      }
      void sleepUntil(answerAt).then(() => {
        x.status = 502;
        res.writeHead(502);
        res.end(finish);
      });
    });
    // A caller that gives up must not leave the target writing (unless the fault is that the reply is lost).
    res.on('close', () => {
      if (fault?.kind !== 'reset-after') upstream.destroy();
      finish();
    });
    shapedPipe(req, up, start, c.bytesPerSecond, (chunk) => upstream.write(chunk)).then(
      () => upstream.end(),
      () => upstream.destroy(),
    );
  });
  server.on('connection', (s: Socket) => fresh.add(s));
  // Real S3 keeps idle connections open for a while; Node's default (5 s) would close them between calls.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    inFlight: () => inFlight,
    pending: () => [...open],
    set(next) {
      conditionsOf = typeof next === 'function' ? next : () => next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}
