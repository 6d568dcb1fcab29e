/**
 * The recent live events a shared feed applied to the query cache, by stream id (oldest first,
 * at most `capacity`). When an HTTP answer read at stream position `asOf` lands, the events past
 * `asOf` are applied again on top of it: the answer was read before they were stored, so without
 * them it would take them back out of the cache (issue 16).
 * @internal
 */
export class FeedLog<T> {
  private readonly entries: Array<{ id: bigint; value: T }> = [];
  /** The newest id that fell out of the log: an answer older than it cannot be completed. */
  private evictedUpTo = -1n;

  constructor(private readonly capacity = 256) {}

  /**
   * Keeps `value` at `id`, in id order. With an entry at `id` already, `replace(existing)` decides
   * whether the new one takes its place (default: it does not).
   */
  add(id: bigint, value: T, replace: (existing: T) => boolean = () => false): void {
    let i = this.entries.length;
    while (i > 0 && (this.entries[i - 1] as { id: bigint }).id > id) i -= 1;
    const before = this.entries[i - 1];
    if (before && before.id === id) {
      if (replace(before.value)) before.value = value;
      return;
    }
    this.entries.splice(i, 0, { id, value });
    while (this.entries.length > this.capacity) {
      const out = this.entries.shift() as { id: bigint };
      if (out.id > this.evictedUpTo) this.evictedUpTo = out.id;
    }
  }

  /**
   * The entries past `asOf`, oldest first; null when some of them may have fallen out of the log
   * (then the answer is too old to complete: read it again).
   */
  after(asOf: bigint): Array<{ id: bigint; value: T }> | null {
    if (asOf < this.evictedUpTo) return null;
    return this.entries.filter((entry) => entry.id > asOf);
  }

  /** How many entries it holds (tests). */
  get size(): number {
    return this.entries.length;
  }
}
