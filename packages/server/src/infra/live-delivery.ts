import type { Hub, HubAttachment, HubEvent, HubSink } from './hub.js';
import type { LiveItem, LiveSpec } from './live.js';

/** Compares two durable ids (decimal strings of increasing sequence numbers). */
export function idAfter(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  return a.length === b.length ? a > b : a.length > b.length;
}

/** A failed durable resync replay is retried after this long, doubling up to `RETRY_MAX_MS`. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;

/** Delivery phases: replaying (live events wait), live, stopped. */
export type DeliveryState = 'initial' | 'live' | 'stopped';

/**
 * The one delivery state machine of a `LiveStream`, shared by the WebSocket fast path
 * (`ws/live-subscription.ts`, writing frames) and the generic iterator (`LiveStream`'s
 * `Symbol.asyncIterator`, queueing values for any adapter):
 *
 * attach → initial read (live events published meanwhile are buffered) → `started()` → the items →
 * the buffered events → live. A `resync()` (the bus may have lost events, or a durable topic had a
 * gap) goes back to replaying — durable streams from the last delivered id, ephemeral ones a fresh
 * snapshot — while live events wait again, so none overtakes the replay. Durable ids are delivered
 * once and in order; the filter applies to live events.
 *
 * NOTE: subclasses keep their own per-event fields on the same object (the fast path reads only
 * itself, its socket pair and the event per delivery).
 */
export abstract class LiveDelivery implements HubSink {
  state: DeliveryState = 'initial';
  protected lastId: string | undefined;
  protected readonly durable: boolean;
  private readonly filter: ((data: unknown) => boolean) | undefined;
  private buffered: HubEvent[] | null = null;
  private resyncPending = false;
  /** Delay before retrying a failed durable replay (0: none failed since the last success). */
  private retryMs = 0;
  private attachment: HubAttachment | null = null;

  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: the stream's event type is erased here
    protected readonly spec: LiveSpec<any>,
    /** Live events buffered while replaying before `overflow()`. */
    private readonly bufferLimit: number,
  ) {
    this.filter = spec.filter;
    this.durable = spec.durable;
    this.lastId = spec.lastEventId;
  }

  /** An accepted live event. */
  protected abstract emit(event: HubEvent): void;
  /** An accepted snapshot or replayed item. */
  protected abstract emitItem(item: LiveItem<unknown>): void;
  /** The first initial read is done (its items follow). */
  protected abstract started(): void;
  /** The first initial read failed: the stream ends with `cause`. */
  protected abstract failed(cause: unknown): void;
  /** More than `bufferLimit` live events arrived during a replay. */
  protected abstract overflow(): void;

  /**
   * Attaches to the hub, then reads the initial items. Attached first: nothing published meanwhile
   * is missed. Call once, when the subclass is ready to emit.
   */
  protected begin(hub: Hub): void {
    this.attachment = hub.attach(this.spec.topic, this);
    void this.start(this.attachment);
  }

  private async start(attachment: HubAttachment): Promise<void> {
    try {
      await attachment.ready;
      if (this.isStopped()) return;
      const items = await this.spec.initial(this.spec.lastEventId, this.headListener());
      if (this.isStopped()) return;
      this.holdWrites();
      try {
        this.started();
        this.replayed(items);
      } finally {
        this.releaseWrites();
      }
      await this.catchUp();
    } catch (cause) {
      if (this.isStopped()) return;
      this.failed(cause);
    }
  }

  /**
   * The callback a durable read tells its head to (the hub's baseline for this topic).
   * NOTE: made per read, not kept as a field: no closure held by every idle subscriber.
   */
  private headListener(): ((headId: string) => void) | undefined {
    if (!this.durable) return undefined;
    const attachment = this.attachment;
    return attachment ? (headId) => attachment.observeHead(headId) : undefined;
  }

  /**
   * Around a replay (`started` and its items): a transport that writes frames may gather them into
   * one write (a resume after a node restart replays hundreds of events per socket). No-ops here.
   */
  protected holdWrites(): void {}
  protected releaseWrites(): void {}

  /** A method, so that TypeScript does not narrow the state across awaits. */
  protected isStopped(): boolean {
    return this.state === 'stopped';
  }

  deliver(event: HubEvent): void {
    if (this.state === 'live') {
      if (this.accept(event)) this.emit(event);
    } else if (this.state === 'initial') {
      this.buffered ??= [];
      if (this.buffered.length >= this.bufferLimit) {
        this.overflow();
        return;
      }
      this.buffered.push(event);
    }
  }

  resync(): void {
    if (this.state === 'stopped') return;
    this.resyncPending = true;
    if (this.state === 'initial') return; // the running replay repeats itself before going live
    this.state = 'initial';
    void this.catchUp().catch(() => {});
  }

  /** Replays while a resync is pending, then delivers what was buffered and goes live. */
  private async catchUp(): Promise<void> {
    try {
      while (this.resyncPending) {
        this.resyncPending = false;
        const items = await this.spec.initial(this.durable ? this.lastId : undefined, this.headListener());
        if (this.state !== 'initial') return;
        this.holdWrites();
        try {
          this.replayed(items);
        } finally {
          this.releaseWrites();
        }
      }
    } catch {
      if (this.state !== 'initial') return;
      if (this.durable) {
        // NOTE: the replay failed (the store did not answer). Going live now would deliver the
        // buffered events past the hole this replay was to fill, and nothing would replay it later
        // (the hub has already moved past it). Stay replaying — live events stay buffered, and past
        // the buffer limit the stream ends resumable — and try again with backoff.
        this.resyncPending = true;
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs === 0 ? RETRY_FIRST_MS : this.retryMs * 2);
        const timer = setTimeout(() => {
          if (this.state === 'initial') void this.catchUp().catch(() => {});
        }, this.retryMs);
        timer.unref?.();
        return;
      }
      // An ephemeral stream goes live: its next resync sends a fresh snapshot.
    }
    this.retryMs = 0;
    if (this.state !== 'initial') return;
    const queued = this.buffered;
    this.buffered = null;
    this.state = 'live';
    if (queued) for (const event of queued) if (this.accept(event)) this.emit(event);
  }

  private replayed(items: Array<LiveItem<unknown>>): void {
    for (const item of items) {
      if (this.isStopped()) return;
      if (this.durable && item.id !== undefined) {
        if (!idAfter(item.id, this.lastId)) continue;
        this.lastId = item.id;
      }
      this.emitItem(item);
    }
  }

  protected accept(event: HubEvent): boolean {
    if (this.filter && !this.filter(event.data)) return false;
    if (this.durable && event.id !== undefined) {
      if (!idAfter(event.id, this.lastId)) return false;
      this.lastId = event.id;
    }
    return true;
  }

  /** Leaves the hub; nothing is emitted afterwards. */
  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.buffered = null;
    this.attachment?.detach();
  }
}
