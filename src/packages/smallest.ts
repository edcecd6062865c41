/** The `cap` smallest items seen, in order; input that is already sorted costs one comparison each. */
export class SmallestK<T> {
  readonly items: T[] = [];

  constructor(
    private readonly cap: number,
    private readonly cmp: (a: T, b: T) => number,
  ) {}

  /** Keeps `x` if it is among the smallest; returns the item that is not kept (`x` or the one it pushed out). */
  add(x: T): T | undefined {
    const a = this.items;
    if (a.length >= this.cap && this.cmp(x, a[a.length - 1] as T) >= 0) return x;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cmp(a[mid] as T, x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, x);
    return a.length > this.cap ? a.pop() : undefined;
  }
}
