/**
 * A least-recently-used map bounded by the total weight of its entries (e.g. profiled blocks,
 * which is what a cached profile's memory scales with) rather than by their count. The newest
 * entry is always kept, even alone above the capacity: the caller just computed it and is about
 * to use it again.
 */
export class WeightedLru<K, V> {
  private readonly entries = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The summed weight of the entries held. */
  get weight(): number {
    return this.total;
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit.value;
  }

  /** Adds (or replaces) an entry as the most recently used, then drops the least recently used over capacity. */
  set(key: K, value: V, weight: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.total -= old.weight;
    }
    this.entries.set(key, { value, weight });
    this.total += weight;
    while (this.total > this.capacity && this.entries.size > 1) {
      const [oldest, entry] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.total -= entry.weight;
    }
  }
}
