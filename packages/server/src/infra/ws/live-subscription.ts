import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Hub, HubEvent } from '../hub.js';
import type { LiveItem, LiveSpec } from '../live.js';
import { LiveDelivery } from '../live-delivery.js';
import { itemFrame, type PrefixGroup, sharedFrame, tailFor, wsPayload } from './frames.js';
import type { Request } from './procedures.js';
import { CloseCode } from './protocol.js';
import { guard, OPEN, type Transport } from './transport.js';

/**
 * `PULSE_WS_FRAMING=ws` sends fast-path frames through ws's own `send` instead of the one header
 * writer: a benchmark switch (bench: BENCH_FRAMING_AB=1) to weigh ws's framing against Pulse's,
 * not a setting for production.
 */
const WS_FRAMING = process.env.PULSE_WS_FRAMING === 'ws';
const WS_TEXT = { binary: false } as const;

/** The rest of a `started` message after the subscription's `{"id":…,` prefix. */
const STARTED_RESULT = '"result":{"type":"started"}}';

/** Live events a subscription buffers while it replays before the socket is closed (4008). */
const REPLAY_BUFFER_LIMIT = 10_000;

/**
 * Fast path: a subscription whose resolver returned a `LiveStream` is a hub sink (the shared
 * `LiveDelivery` state machine). Each event is serialised once and framed once per distinct
 * subscription id (see `sharedFrame`), and the frame is written straight to the socket.
 */
export class LiveSubscription<TContext> extends LiveDelivery {
  private pending: Map<string, HubEvent> | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private startedSent = false;
  private readonly prefix: string;
  private readonly group: PrefixGroup;
  // NOTE: what the per-event path reads is copied here, so a delivery touches this object, the
  // socket pair and the event, not a chain of request → connection → transport → spec objects.
  private readonly transport: Transport<TContext>;
  private readonly socket: WebSocket;
  private readonly raw: Duplex;
  private readonly slowDropBytes: number;
  private readonly slowCloseBytes: number;

  constructor(
    private readonly request: Request<TContext>,
    // biome-ignore lint/suspicious/noExplicitAny: the stream's event type is erased at the transport
    spec: LiveSpec<any>,
    hub: Hub,
  ) {
    super(spec, REPLAY_BUFFER_LIMIT);
    const conn = request.conn;
    this.transport = conn.transport;
    this.socket = conn.socket;
    this.raw = conn.raw;
    this.slowDropBytes = conn.transport.limits.slowDropBytes;
    this.slowCloseBytes = conn.transport.limits.slowCloseBytes;
    this.group = conn.transport.acquirePrefix(
      `{"id":${JSON.stringify(request.id)},${request.jsonrpc ? '"jsonrpc":"2.0",' : ''}`,
    );
    this.prefix = this.group.prefix;
    this.begin(hub);
  }

  // NOTE: `started` goes out only after the initial read (a durable stream's head, a snapshot):
  // a client that loads history when it sees `started` then reads at least up to that point, and
  // every later event arrives live, so nothing falls between the two.
  protected started(): void {
    if (this.startedSent) return;
    this.startedSent = true;
    // NOTE: the fast path runs only with plain JSON (no transformer, no encoder), so this is exactly
    // what `transport.encode({ id, jsonrpc, result: { type: 'started' } })` writes, without building
    // and serialising the message for every new subscription.
    this.request.conn.send(this.prefix + STARTED_RESULT);
  }

  protected failed(cause: unknown): void {
    // As the stock adapter ends a failing subscription: `started`, its error, then `stopped`.
    this.started();
    this.stop();
    this.request.fail(cause);
    this.request.stop(true);
  }

  protected overflow(): void {
    this.request.conn.closeWith(CloseCode.slowConsumer, 'Too many events during replay');
  }

  // NOTE: a replay's frames (ws's own sends, each corking the TCP socket by itself) leave in one
  // `writev`: cork is counted, so ws's inner uncorks flush nothing until this one.
  protected override holdWrites(): void {
    this.raw.cork();
  }

  protected override releaseWrites(): void {
    this.raw.uncork();
  }

  protected emitItem(item: LiveItem<unknown>): void {
    this.request.conn.send(itemFrame(this.prefix, item));
  }

  protected emit(event: HubEvent): void {
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
    const transport = this.transport;
    if (WS_FRAMING) {
      this.socket.send(wsPayload(event, group), WS_TEXT);
      transport.countDelivery(event);
      return;
    }
    const shared = group.count > 1 ? sharedFrame(event, group) : null;
    if (transport.gathering !== 'off') {
      // Corked until the end of the turn: every frame this socket gets meanwhile (a burst,
      // several topics) leaves in the same `writev`.
      transport.gather(raw);
      if (shared) raw.write(shared);
      else {
        const tail = tailFor(event);
        raw.write(group.headFor(tail.length));
        raw.write(tail);
      }
    } else if (shared) raw.write(shared);
    else {
      // An id no one else uses (or too many distinct shared ones): the group's header + id,
      // then the event's shared tail.
      const tail = tailFor(event);
      raw.cork();
      raw.write(group.headFor(tail.length));
      raw.write(tail);
      raw.uncork();
    }
    transport.countDelivery(event);
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
    for (const event of events) this.emit(event);
  }

  override stop(): void {
    if (this.state === 'stopped') return;
    super.stop();
    this.transport.releasePrefix(this.group);
    this.pending = null;
    clearTimeout(this.flushTimer);
  }
}
