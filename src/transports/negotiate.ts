/**
 * What a POST must look like, said to people who write it by hand (curl, scripts, gateways):
 *
 * - Accept: the spec has clients list both application/json and text/event-stream. A client that
 *   lists only JSON, or sends no Accept or `*\/*` (curl's default), is answered with JSON rather
 *   than 406: it accepts JSON, and a stateless server needs no stream unless progress is asked for.
 * - The JSON-RPC envelope: a request without `"jsonrpc": "2.0"` or without an `id` (which makes it
 *   a notification, answered by nothing) is refused with what to add.
 */

/** A media range of an Accept header, without q=0 ones. */
function ranges(accept: string): string[] {
  return accept
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part && !/;\s*q=0(?:\.0{0,3})?\s*(?:;|$)/.test(part))
    .map((part) => part.split(';')[0]!.trim());
}

/**
 * `both`: JSON and event streams named (the spec's form); `json`: JSON only, or anything (answered
 * with JSON); undefined: neither (406).
 */
export function acceptance(accept: string | undefined): 'both' | 'json' | undefined {
  if (accept === undefined || accept.trim() === '') return 'json';
  const r = ranges(accept);
  const json = r.some((m) => m === 'application/json' || m === 'application/*' || m === '*/*');
  if (!json) return undefined;
  return r.includes('text/event-stream') ? 'both' : 'json';
}

export const NOT_ACCEPTABLE =
  'Not Acceptable: this server answers with application/json (and text/event-stream when a call asks for progress). Send "Accept: application/json, text/event-stream", or leave Accept out.';

/** The same messages without progress tokens: a client that takes no event stream cannot receive progress. */
export function withoutProgress(body: unknown): unknown {
  const strip = (m: unknown) => {
    const msg = m as { params?: { _meta?: Record<string, unknown> } } | null;
    if (!msg?.params?._meta || !('progressToken' in msg.params._meta)) return m;
    const { progressToken: _dropped, ...meta } = msg.params._meta;
    return { ...msg, params: { ...msg.params, _meta: meta } };
  };
  return Array.isArray(body) ? body.map(strip) : strip(body);
}

const EXAMPLE = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"...","arguments":{}}}';

/** Why a body is not JSON-RPC the server can answer, with what to add; undefined when it is. */
export function envelopeProblem(messages: unknown[]): string | undefined {
  if (messages.length === 0) return `The body is an empty batch: send a JSON-RPC request such as ${EXAMPLE}.`;
  for (const m of messages) {
    if (!m || typeof m !== 'object' || Array.isArray(m)) return `The body must be a JSON-RPC message (a JSON object) or a list of them, such as ${EXAMPLE}.`;
    const msg = m as { jsonrpc?: unknown; id?: unknown; method?: unknown; result?: unknown; error?: unknown };
    const isRequest = typeof msg.method === 'string' && !msg.method.startsWith('notifications/');
    const missing = [
      ...(msg.jsonrpc !== '2.0' ? ['"jsonrpc": "2.0"'] : []),
      ...(isRequest && msg.id === undefined ? ['an "id" (a number or a string)'] : []),
    ];
    if (missing.length) {
      return (
        `The body is not a JSON-RPC ${isRequest ? 'request' : 'message'}: add ${missing.join(' and ')}, e.g. ${EXAMPLE}.` +
        (isRequest && msg.id === undefined ? ' Without an "id" it would be a notification, which gets no answer.' : '')
      );
    }
  }
  return undefined;
}
