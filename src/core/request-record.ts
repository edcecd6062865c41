/**
 * The record of the HTTP request being handled, for its log line and metrics: an AsyncLocalStorage
 * of its own, so the layers that learn its details (the transport: the JSON-RPC method; the tool
 * runner: which tool, as whom, with what result) note them without being handed anything. Outside
 * an observed request (stdio, or logs and metrics off) noting does nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestRecord {
  id: string;
  started: number;
  rpcMethod?: string | undefined;
  tool?: string | undefined;
  principal?: string | undefined;
  /** Set by the tool runner: the tool answered, with a result or a tool error. */
  toolOutcome?: 'ok' | 'tool_error' | undefined;
  /** The ToolError code of a tool error (e.g. access_denied). */
  errorCode?: string | undefined;
}

const store = new AsyncLocalStorage<RequestRecord>();

/** Adds what a layer learned to the current request's record (no-op outside an observed request). */
export function noteRequest(fields: Partial<Omit<RequestRecord, 'id' | 'started'>>): void {
  const record = store.getStore();
  if (record) Object.assign(record, fields);
}

/** The JSON-RPC method of a parsed body ("batch" for several messages). */
export function noteMessages(messages: unknown[]): void {
  const record = store.getStore();
  if (!record) return;
  const first = messages[0] as { method?: unknown; params?: { name?: unknown } } | null | undefined;
  record.rpcMethod = messages.length > 1 ? 'batch' : typeof first?.method === 'string' ? first.method : undefined;
  if (record.rpcMethod === 'tools/call' && typeof first?.params?.name === 'string') record.tool = first.params.name.slice(0, 100);
}

/** Runs `fn` with `record` as the current request's record. */
export function observed<T>(record: RequestRecord, fn: () => T): T {
  return store.run(record, fn);
}
