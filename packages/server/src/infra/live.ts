import { type TrackedEnvelope, TRPCError, tracked } from '@trpc/server';
import type { Hub, HubEvent } from './hub.js';
import { LiveDelivery } from './live-delivery.js';

export { idAfter } from './live-delivery.js';

/** One item sent before the live tail: a snapshot entry or a replayed durable event. */
export interface LiveItem<T> {
  id?: string;
  data: T;
  /**
   * `data`'s JSON exactly as stored (`JSON.stringify(data)`), when the item was read from a store:
   * the WebSocket fast path writes it as is instead of serialising `data` once more.
   */
  json?: string;
}

/** What a subscription procedure streams; domains describe it, transports execute it. */
export interface LiveSpec<T> {
  /** Hub topic the live tail comes from. */
  topic: string;
  /** Cheap per-subscriber predicate on each live event (workspace scoping is done by the topic). */
  filter?: (data: T) => boolean;
  /**
   * Items sent first. Called after the bus subscription is live, so nothing published meanwhile is
   * lost. `afterId` is the last durable id the subscriber has (resume), or undefined. A durable
   * stream calls `onHead` with the head it read, so the hub needs no reorder wait for what follows.
   */
  initial: (afterId: string | undefined, onHead?: (headId: string) => void) => Promise<Array<LiveItem<T>>>;
  /** Durable streams carry ordered ids: events at or below the last delivered id are dropped. */
  durable: boolean;
  /** Resume point sent by the client (`lastEventId`). */
  lastEventId?: string;
  /** Ephemeral streams: slow sockets keep only the latest event per key instead of queueing. */
  coalesceKey?: (data: T) => string;
  /** Aborts the stream (procedure signal). */
  signal?: AbortSignal;
  /**
   * Live events a generic iterator holds for a consumer that does not keep up (default
   * `DEFAULT_QUEUE_LIMIT`). Past it a durable stream ends with a resumable error; an ephemeral one
   * keeps the newest events (one per coalesce key when it has one).
   */
  queueLimit?: number;
}

/** Default of `LiveSpec.queueLimit`. */
export const DEFAULT_QUEUE_LIMIT = 1_000;

/** The error a durable stream ends with when its consumer fell too far behind. */
export function consumerTooSlow(): TRPCError {
  return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'Consumer too slow; resume with lastEventId' });
}

/**
 * The value a Pulse subscription resolver returns. It is an ordinary `AsyncIterable`
 * (server-side callers, any tRPC adapter iterate it), and Pulse's WebSocket handler recognises
 * it and attaches the socket straight to the hub, skipping per-subscriber async loops.
 */
export class LiveStream<TYield> implements AsyncIterable<TYield> {
  constructor(
    readonly hub: Hub,
    // biome-ignore lint/suspicious/noExplicitAny: the spec's event type is erased at this boundary
    readonly spec: LiveSpec<any>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<TYield> {
    return this.iterate()[Symbol.asyncIterator]();
  }

  private async *iterate(): AsyncGenerator<TYield> {
    const { spec } = this;
    const delivery = new QueueDelivery(spec);
    const onAbort = () => delivery.wake();
    spec.signal?.addEventListener('abort', onAbort);
    try {
      delivery.open(this.hub);
      while (!spec.signal?.aborted) {
        if (delivery.error) throw delivery.error;
        const entry = delivery.take();
        if (entry) yield wrap<TYield>(entry.id, entry.data);
        else await delivery.next();
      }
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
      delivery.stop();
    }
  }
}

interface QueueEntry {
  id: string | undefined;
  data: unknown;
  /** Superseded by a newer event with the same coalesce key. */
  dead: boolean;
}

/**
 * The generic path's side of the delivery state machine: what `LiveDelivery` emits is queued for a
 * consumer that pulls at its own pace, bounded by `spec.queueLimit`.
 */
class QueueDelivery extends LiveDelivery {
  error: TRPCError | null = null;
  private queue: QueueEntry[] = [];
  private live = 0;
  private readonly limit: number;
  private readonly byKey: Map<string, QueueEntry> | null;
  private waiter: (() => void) | null = null;

  // biome-ignore lint/suspicious/noExplicitAny: the stream's event type is erased here
  constructor(spec: LiveSpec<any>) {
    const limit = spec.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    super(spec, limit);
    this.limit = limit;
    this.byKey = !spec.durable && spec.coalesceKey ? new Map() : null;
  }

  open(hub: Hub): void {
    this.begin(hub);
  }

  take(): QueueEntry | undefined {
    let entry = this.queue.shift();
    while (entry?.dead) entry = this.queue.shift();
    if (entry) {
      this.live -= 1;
      if (this.byKey) {
        const key = this.spec.coalesceKey?.(entry.data);
        if (key !== undefined && this.byKey.get(key) === entry) this.byKey.delete(key);
      }
    }
    return entry;
  }

  /** Resolves when something was queued, the stream ended, or `wake()` was called. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  protected started(): void {}

  protected failed(cause: unknown): void {
    this.end(cause instanceof TRPCError ? cause : new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause }));
  }

  protected overflow(): void {
    // Live events past the limit while replaying: a durable stream ends resumable; an ephemeral
    // one drops them (its snapshot follows).
    if (this.durable) this.end(consumerTooSlow());
  }

  protected emitItem(item: LiveItem<unknown>): void {
    this.push({ id: item.id, data: item.data, dead: false });
  }

  protected emit(event: HubEvent): void {
    const entry: QueueEntry = { id: event.id, data: event.data, dead: false };
    if (this.byKey) {
      const key = this.spec.coalesceKey?.(event.data) as string;
      const previous = this.byKey.get(key);
      if (previous) {
        previous.dead = true;
        this.live -= 1;
      }
      this.byKey.set(key, entry);
    } else if (this.live >= this.limit) {
      if (this.durable) {
        this.end(consumerTooSlow());
        return;
      }
      this.take();
    }
    this.push(entry);
    if (this.byKey && this.live > this.limit) this.take();
  }

  private push(entry: QueueEntry): void {
    this.queue.push(entry);
    this.live += 1;
    this.wake();
  }

  /**
   * Ends the stream with `error` at once: what is queued is dropped and the hub left, so a stalled
   * consumer holds nothing; it resumes from its lastEventId.
   */
  private end(error: TRPCError): void {
    this.error = error;
    this.queue = [];
    this.live = 0;
    this.byKey?.clear();
    this.stop();
    this.wake();
  }
}

function wrap<TYield>(id: string | undefined, data: unknown): TYield {
  return (id === undefined ? data : tracked(id, data)) as TYield;
}

/** A live stream of ephemeral events: snapshot first, then updates. */
export function liveEphemeral<T>(
  hub: Hub,
  spec: Omit<LiveSpec<T>, 'durable' | 'lastEventId'>,
): LiveStream<T> {
  return new LiveStream<T>(hub, { ...spec, durable: false });
}

/** A resumable stream of durable, id-ordered events (yields `tracked(id, event)`). */
export function liveDurable<T>(
  hub: Hub,
  spec: Omit<LiveSpec<T>, 'durable' | 'coalesceKey'>,
): LiveStream<TrackedEnvelope<T>> {
  return new LiveStream<TrackedEnvelope<T>>(hub, { ...spec, durable: true });
}
