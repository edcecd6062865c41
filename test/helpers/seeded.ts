/** mulberry32: a small seeded generator, so that a trial can be replayed from its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Whether a package write sent again after a crash completed: it committed, or found its work done
 * (a create whose revision `hash` exists, a delete of a package that is gone).
 */
export function completedAgain(tool: string, again: { isError: boolean; text: string }, hash: string | null): boolean {
  return (
    !again.isError ||
    (tool === 'package_create' && /already exists/.test(again.text) && hash !== null && again.text.includes(hash)) ||
    (tool === 'package_delete' && /does not exist/.test(again.text))
  );
}

/** A crash trial's line: where latest is, and how the call sent again ended. */
export function trialOutcome(latest: { before: string | null; after: string | null; made: string | null }, again: { isError: boolean; text: string }, problems: string[]): string {
  const where = latest.after === latest.before ? 'unchanged' : latest.after === latest.made ? 'moved to the new revision' : `at ${latest.after}`;
  return `latest ${where}; sent again: ${again.isError ? again.text.split('\n')[0]!.slice(0, 60) : 'committed'}${problems.length ? `; PROBLEMS: ${problems.join(' | ')}` : ''}`;
}
