/**
 * An HTTP proxy that plays the network between the server and S3: an answer comes back no sooner
 * than the round trip after its request arrived (S3's own time to answer is part of a real round
 * trip, so the target's is absorbed in it rather than added), a new connection costs one more round
 * trip (the TCP handshake), and bodies can be held to a bandwidth shared by all connections (one link
 * up, one down). It records each exchange, so a benchmark can count the requests of a call and the
 * round trips it waited for one after another.
 *
 * What happens to a request is decided per request by `conditions(req)`: latency and bandwidth
 * now; faults (errors, resets, stalls) can become more fields of the same answer.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Conditions {
  /** Round trip of every request: its answer starts no sooner than this after the request arrived. */
  delayMs: number;
  /** Added to the first request on a new connection (TCP handshake); default: delayMs. */
  connectMs?: number;
  /** Bandwidth of the link, each direction, shared by all connections (bytes/s); default unlimited. */
  bytesPerSecond?: number;
}

export interface Exchange {
  method: string;
  url: string;
  /** performance.now() when the request reached the proxy, and when its answer was fully sent back. */
  start: number;
  end: number;
  status?: number;
}

export interface LatencyProxy {
  endpoint: string;
  /** Finished exchanges, in the order they finished. */
  exchanges: Exchange[];
  /** Requests forwarded and not yet answered. */
  inFlight(): number;
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

export async function startLatencyProxy(target: string, initial: Conditions): Promise<LatencyProxy> {
  let conditionsOf: (req: http.IncomingMessage) => Conditions = () => initial;
  const exchanges: Exchange[] = [];
  let inFlight = 0;
  const up = new Link();
  const down = new Link();
  const fresh = new WeakSet<Socket>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

  const server = http.createServer((req, res) => {
    const start = performance.now();
    const c = conditionsOf(req);
    inFlight++;
    const x: Exchange = { method: req.method ?? 'GET', url: req.url ?? '', start, end: start };
    const finish = () => {
      inFlight--;
      x.end = performance.now();
      exchanges.push(x);
    };
    // The handshake of a new connection comes before its first request.
    const connect = fresh.has(req.socket) ? (c.connectMs ?? c.delayMs) : 0;
    fresh.delete(req.socket);
    const answerAt = start + connect + c.delayMs;
    const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers, agent }, (answer) => {
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
    upstream.on('error', () => {
      if (res.headersSent) return void res.destroy();
      void sleepUntil(answerAt).then(() => {
        res.writeHead(502);
        res.end(finish);
      });
    });
    // A caller that gives up must not leave the target writing.
    res.on('close', () => upstream.destroy());
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
