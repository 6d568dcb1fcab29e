import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Hub, HubAttachment, HubEvent, HubSink } from '../hub.js';
import { idAfter, type LiveItem, type LiveSpec } from '../live.js';
import { itemFrame, type PrefixGroup, sharedFrame, tailFor } from './frames.js';
import type { Request } from './procedures.js';
import { CloseCode } from './protocol.js';
import { guard, OPEN, type Transport } from './transport.js';

/**
 * Fast path: a subscription whose resolver returned a `LiveStream` is a hub sink. Each event is
 * serialised once and framed once per distinct subscription id (see `frameFor`), and the frame is
 * written straight to the socket.
 */
export class LiveSubscription<TContext> implements HubSink {
  state: 'initial' | 'live' | 'stopped' = 'initial';
  private buffered: HubEvent[] | null = null;
  private lastId: string | undefined;
  private pending: Map<string, HubEvent> | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private resyncPending = false;
  private startedSent = false;
  private readonly prefix: string;
  private readonly group: PrefixGroup;
  private readonly attachment: HubAttachment;
  // NOTE: what the per-event path reads is copied here, so a delivery touches this object, the
  // socket pair and the event, not a chain of request → connection → transport → spec objects.
  private readonly transport: Transport<TContext>;
  private readonly socket: WebSocket;
  private readonly raw: Duplex;
  private readonly filter: ((data: unknown) => boolean) | undefined;
  private readonly durable: boolean;
  private readonly slowDropBytes: number;
  private readonly slowCloseBytes: number;

  constructor(
    private readonly request: Request<TContext>,
    // biome-ignore lint/suspicious/noExplicitAny: the stream's event type is erased at the transport
    private readonly spec: LiveSpec<any>,
    hub: Hub,
  ) {
    const conn = request.conn;
    this.transport = conn.transport;
    this.socket = conn.socket;
    this.raw = conn.raw;
    this.filter = spec.filter;
    this.durable = spec.durable;
    this.slowDropBytes = conn.transport.limits.slowDropBytes;
    this.slowCloseBytes = conn.transport.limits.slowCloseBytes;
    this.lastId = spec.lastEventId;
    this.group = conn.transport.acquirePrefix(
      `{"id":${JSON.stringify(request.id)},${request.jsonrpc ? '"jsonrpc":"2.0",' : ''}`,
    );
    this.prefix = this.group.prefix;
    // Attached before the initial items are read: nothing published meanwhile is missed.
    this.attachment = hub.attach(spec.topic, this);
    void this.start();
  }

  private sendStarted(): void {
    if (this.startedSent) return;
    this.startedSent = true;
    this.request.conn.send(
      this.transport.encode({
        id: this.request.id,
        jsonrpc: this.request.jsonrpc,
        result: { type: 'started' },
      }),
    );
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  private async start(): Promise<void> {
    try {
      await this.attachment.ready;
      if (this.isStopped()) return;
      const items = await this.spec.initial(this.spec.lastEventId);
      if (this.isStopped()) return;
      // NOTE: `started` goes out only after the initial read (a durable stream's head, a snapshot):
      // a client that loads history when it sees `started` then reads at least up to that point,
      // and every later event arrives live, so nothing falls between the two.
      this.sendStarted();
      this.sendItems(items);
      await this.catchUp();
    } catch (cause) {
      if (this.isStopped()) return;
      // As the stock adapter ends a failing subscription: `started`, its error, then `stopped`.
      this.sendStarted();
      this.stop();
      this.request.fail(cause);
      this.request.stop(true);
    }
  }

  deliver(event: HubEvent): void {
    if (this.state === 'live') {
      if (this.accept(event)) this.write(event);
    } else if (this.state === 'initial') {
      this.buffered ??= [];
      if (this.buffered.length >= 10_000) {
        this.request.conn.closeWith(CloseCode.slowConsumer, 'Too many events during replay');
        return;
      }
      this.buffered.push(event);
    }
  }

  resync(): void {
    // The bus may have lost events (or a durable topic had a gap): replay (durable) or resend a
    // snapshot (ephemeral). Live events wait in the buffer meanwhile, so none overtakes the replay.
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
        const items = await this.spec.initial(this.spec.durable ? this.lastId : undefined);
        if (this.state !== 'initial') return;
        this.sendItems(items);
      }
    } catch {
      // the next resync (or the client's resume) recovers
    }
    if (this.state !== 'initial') return;
    const queued = this.buffered;
    this.buffered = null;
    this.state = 'live';
    if (queued) for (const event of queued) if (this.accept(event)) this.write(event);
  }

  private accept(event: HubEvent): boolean {
    if (this.filter && !this.filter(event.data)) return false;
    if (this.durable && event.id !== undefined) {
      if (!idAfter(event.id, this.lastId)) return false;
      this.lastId = event.id;
    }
    return true;
  }

  private write(event: HubEvent): void {
    // NOTE: once closing, the 4008 close frame waits behind the buffer; terminating on the next
    // event would hide the reason from a client that is merely slow.
    if (this.socket.readyState !== OPEN) return;
    const raw = this.raw;
    const amount = raw.writableLength;
    if (amount > this.slowCloseBytes) {
      this.transport.opts.onDropped?.('slow');
      this.request.conn.closeWith(CloseCode.slowConsumer, 'Slow consumer');
      return;
    }
    if (amount > this.slowDropBytes) {
      if (!this.durable) {
        this.hold(event);
        return;
      }
      this.request.conn.checkPressure();
    }
    // NOTE: WebSocket frames written straight to the TCP socket. Valid because the server never
    // negotiates permessage-deflate and sends nothing through ws's queue (no Blobs); it skips ws's
    // per-send header allocation and options handling.
    const group = this.group;
    const shared = group.count > 1 ? sharedFrame(event, group) : null;
    if (shared) raw.write(shared);
    else {
      // An id no one else uses (or too many distinct shared ones): the group's header + id,
      // then the event's shared tail.
      const tail = tailFor(event);
      raw.cork();
      raw.write(group.headFor(tail.length));
      raw.write(tail);
      raw.uncork();
    }
    this.transport.countDelivery(event);
  }

  /** Slow consumer, ephemeral stream: keep only the latest event per coalesce key. */
  private hold(event: HubEvent): void {
    const onDropped = this.request.conn.transport.opts.onDropped;
    const key = this.spec.coalesceKey?.(event.data);
    if (key === undefined) {
      onDropped?.('slow');
      return;
    }
    this.pending ??= new Map();
    if (this.pending.has(key)) onDropped?.('coalesced');
    this.pending.delete(key);
    this.pending.set(key, event);
    this.flushTimer ??= setTimeout(() => guard(this.request.conn, () => this.flushPending()), 50);
  }

  private flushPending(): void {
    this.flushTimer = undefined;
    if (this.state === 'stopped' || !this.pending) return;
    if (this.raw.writableLength > this.slowDropBytes) {
      this.flushTimer = setTimeout(() => guard(this.request.conn, () => this.flushPending()), 50);
      return;
    }
    const events = [...this.pending.values()];
    this.pending = null;
    for (const event of events) this.write(event);
  }

  private sendItems(items: Array<LiveItem<unknown>>): void {
    for (const item of items) {
      if (this.spec.durable && item.id !== undefined) {
        if (!idAfter(item.id, this.lastId)) continue;
        this.lastId = item.id;
      }
      this.request.conn.send(itemFrame(this.prefix, item));
    }
  }

  stop(): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.transport.releasePrefix(this.group);
    this.buffered = null;
    this.pending = null;
    clearTimeout(this.flushTimer);
    this.attachment.detach();
  }
}
