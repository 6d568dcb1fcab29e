/**
 * One store read shared by the subscriptions that ask for the same thing at about the same time
 * (a reconnect storm: thousands of sockets of one workspace asking for its snapshot).
 *
 * NOTE: exactness. A subscription asks for its first read after its hub attachment is live, so it
 * gets every event published from then on. A read that had already started when it asked could
 * miss a write committed and published in between, which it would then never see: so a caller
 * never joins a read in flight. Callers join the *next* read of their key, which starts on the next
 * turn of the event loop (`setImmediate`), after every one of them asked: each caller gets exactly
 * what a read of its own, started at that moment, would have returned.
 */
export class ReadBatch<T> {
  private readonly next = new Map<string, Promise<T>>();

  /** The result of a read of `key` that starts after this call; `read` runs once per batch. */
  get(key: string, read: () => Promise<T>): Promise<T> {
    let pending = this.next.get(key);
    if (!pending) {
      pending = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        // Callers from now on wait for the read after this one.
        this.next.delete(key);
        return read();
      });
      this.next.set(key, pending);
    }
    return pending;
  }

  /** Keys with a read waiting to start (for tests and stats). */
  get waiting(): number {
    return this.next.size;
  }
}
