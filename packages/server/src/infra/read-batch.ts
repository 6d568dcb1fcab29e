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

/** One waiting batch of `GatherBatch`: the requests gathered so far and the promise of their results. */
interface Gathering<Q, R> {
  requests: Q[];
  results: Promise<R[]>;
}

/**
 * One store read for many *different* requests of one key (a reconnect storm: thousands of
 * subscribers of one stream resuming, each from its own id). `read` gets every request of a batch
 * and returns one result per request, in order.
 *
 * NOTE: exactness, the `ReadBatch` rule: a request never joins a read in flight. It joins the
 * waiting batch of its key, which starts on the next turn (`setImmediate`) — or, while a read of
 * the key is running, once that read settled: a storm then queues no more than one read per key on
 * the store, and each batch gathers every request that arrived during the previous read. Either
 * way the read starts after every one of its requests was made, so each gets what a read of its
 * own, started at that moment, would have returned.
 */
export class GatherBatch<Q, R> {
  private readonly waiting = new Map<string, Gathering<Q, R>>();
  /** Per key, the settling of its latest batch (waiting or running): the next batch starts after it. */
  private readonly latest = new Map<string, Promise<void>>();

  /** The result of `request`, from a read of `key` that starts after this call. */
  get(key: string, request: Q, read: (requests: Q[]) => Promise<R[]>): Promise<R> {
    let gathering = this.waiting.get(key);
    if (!gathering) {
      const requests: Q[] = [];
      const inFlight = this.latest.get(key);
      const turn = new Promise<void>((resolve) => setImmediate(resolve));
      const start = inFlight ? Promise.all([turn, inFlight]) : turn;
      const results = start.then(() => {
        // Requests from now on wait for the read after this one.
        this.waiting.delete(key);
        return read(requests);
      });
      const settled = results.then(
        () => {},
        () => {},
      );
      this.latest.set(key, settled);
      void settled.then(() => {
        if (this.latest.get(key) === settled) this.latest.delete(key);
      });
      gathering = { requests, results };
      this.waiting.set(key, gathering);
    }
    const index = gathering.requests.push(request) - 1;
    return gathering.results.then((results) => results[index] as R);
  }

  /** Keys with a batch waiting to start (for tests and stats). */
  get pending(): number {
    return this.waiting.size;
  }
}
