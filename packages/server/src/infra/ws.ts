import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type AnyTRPCRouter,
  callTRPCProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  isTrackedEnvelope,
  type TRPCError,
  TRPCError as TRPCErrorClass,
  type TRPCProcedureType,
  transformTRPCResponse,
} from '@trpc/server';
import type { Encoder } from '@trpc/server/adapters/ws';
import { isObservable, observableToAsyncIterable } from '@trpc/server/observable';
import { parseTRPCMessage, type TRPCClientOutgoingMessage, type TRPCResponseMessage } from '@trpc/server/rpc';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Hub, HubAttachment, HubEvent, HubSink } from './hub.js';
import { idAfter, type LiveItem, type LiveSpec, LiveStream } from './live.js';

/**
 * Pulse's WebSocket transport: tRPC's wire protocol (the official `wsLink` talks to it unchanged),
 * with limits the stock adapter lacks, and a fan-out fast path: a subscription that returns a
 * `LiveStream` is attached to the hub directly, and each event is serialised and framed once per
 * distinct subscription id instead of once per socket.
 *
 * Protocol reference: `@trpc/server/src/adapters/ws.ts` (11.19.0); behaviour the wire format
 * leaves open follows it.
 */

/** Close codes Pulse uses (4000–4999 are application-defined). */
export const CloseCode = {
  /** Token missing, invalid or expired: reconnect with a fresh token. */
  unauthorized: 4401,
  /** Too many connections for this user. */
  tooManyConnections: 4429,
  /** Connection params never arrived. */
  authTimeout: 4408,
  /** The socket stopped reading and its buffer passed the close mark; resume with lastEventId. */
  slowConsumer: 4008,
  /** Server going away (graceful shutdown). */
  goingAway: 1001,
  /** The server failed handling this socket (a bug, never the client's input). */
  internalError: 1011,
} as const;

export interface WsLimits {
  maxPayloadBytes: number;
  maxBatch: number;
  maxSubscriptions: number;
  maxConnectionsPerUser: number;
  authTimeoutMs: number;
  pingMs: number;
  pongWaitMs: number;
  slowDropBytes: number;
  slowCloseBytes: number;
  /**
   * Sockets one IP may hold before they have authenticated (default
   * `DEFAULT_MAX_UNAUTHENTICATED_PER_IP`); further upgrades get HTTP 429.
   */
  maxUnauthenticatedPerIp?: number;
  /**
   * Queries and mutations of one connection awaiting their reply (default `DEFAULT_MAX_IN_FLIGHT`);
   * more are refused with TOO_MANY_REQUESTS.
   */
  maxInFlight?: number;
}

/** Default of `WsLimits.maxUnauthenticatedPerIp`. */
export const DEFAULT_MAX_UNAUTHENTICATED_PER_IP = 100;
/** Default of `WsLimits.maxInFlight` (one full default batch). */
export const DEFAULT_MAX_IN_FLIGHT = 128;
/** UTF-8 bytes a close reason may hold (RFC 6455: 125 minus the 2-byte code). */
const MAX_CLOSE_REASON_BYTES = 123;

export interface WsConnectionInfo {
  connectionId: string;
  req: IncomingMessage;
  /** Parsed `connectionParams` (null when the client sent none). */
  connectionParams: Record<string, string> | null;
  /** The accepted socket (the stock adapter's `res`). */
  socket: WebSocket;
  /** Aborted when the socket closes. */
  signal: AbortSignal;
}

/** Where an error happened: the connection, and the request when there was one. */
export interface WsErrorInfo<TContext = unknown> {
  connectionId: string;
  path?: string;
  type?: TRPCProcedureType | 'unknown';
  input?: unknown;
  ctx?: TContext | null;
}

export interface WsHandlerOptions<TContext> {
  router: AnyTRPCRouter;
  path?: string;
  limits: WsLimits;
  allowedOrigins: string[];
  /** Resolves the connection's context; a rejection refuses the socket (every waiting request gets it). */
  createContext?(info: WsConnectionInfo): Promise<TContext> | TContext;
  /** The user a context belongs to (per-user connection limit) and when its rights end. */
  identify?(ctx: TContext): { userId: string; expiresAt: number } | null;
  /** Wire encoding other than JSON (as the stock adapter's `experimental_encoder`); turns off the fast path. */
  experimental_encoder?: Encoder;
  /** Attach `LiveStream` subscriptions to the hub directly (default true; needs JSON and no transformer). */
  fastPath?: boolean;
  onOpen?(connectionId: string, req: IncomingMessage): void;
  onClose?(connectionId: string, ctx: TContext | null): void;
  onError?(error: TRPCError, info: WsErrorInfo<TContext>): void;
  onDelivered?(count: number, event: HubEvent): void;
  onDropped?(reason: 'slow' | 'coalesced'): void;
  /**
   * The close code after `createContext` failed (undefined: a plain close, as the stock adapter).
   * Default: 4429 for TOO_MANY_REQUESTS, else 4401.
   */
  closeCodeFor?(error: TRPCError): number | undefined;
  /** Do not answer clients' `PING` (as the stock adapter's option; tests only). */
  dangerouslyDisablePong?: boolean;
}

export interface WsTransportStats {
  connections: number;
  subscriptions: number;
  subscriptionsByPath: Record<string, number>;
  users: number;
}

export interface WsTransport {
  wss: WebSocketServer;
  stats(): WsTransportStats;
  /** Sends tRPC's `reconnect` notification to every open socket (as the stock adapter's). */
  broadcastReconnectNotification(): void;
  /** Tells every client to reconnect (tRPC `reconnect` notification), then closes sockets after `graceMs`. */
  shutdown(graceMs?: number): Promise<void>;
}

const OPEN = 1;

type RequestId = string | number;

type ErrorExtra = { type?: TRPCProcedureType | 'unknown'; path?: string; input?: unknown };

/**
 * Transport-wide state. Connections and subscriptions are class instances whose methods live on
 * the prototype: an idle subscribed socket costs a few small objects, not dozens of closures.
 */
class Transport<TContext> {
  readonly limits: WsLimits;
  readonly config: AnyTRPCRouter['_def']['_config'];
  readonly connections = new Set<Connection<TContext>>();
  readonly userConnections = new Map<string, number>();
  readonly subscriptionsByPath = new Map<string, number>();
  /** Sockets not yet authenticated, per remote address. */
  readonly unauthenticatedByIp = new Map<string, number>();
  /** LiveStreams go to the hub directly (JSON encoder and a transformer that leaves data as is). */
  readonly fastPath: boolean;
  shuttingDown = false;
  private readonly encoder: Encoder | null;
  private readonly plainJson: boolean;
  // Deliveries are reported once per event (after the synchronous fan-out loop), not once per
  // socket: a metrics hook must not run 10,000 times per broadcast.
  /** Subscriptions by id prefix: frames are shared between subscriptions with the same id. */
  private readonly prefixGroups = new Map<string, PrefixGroup>();
  private deliveredEvent: HubEvent | null = null;
  private deliveredCount = 0;
  private readonly flushDelivered = () => {
    const event = this.deliveredEvent;
    const count = this.deliveredCount;
    this.deliveredEvent = null;
    this.deliveredCount = 0;
    if (event && count > 0) this.opts.onDelivered?.(count, event);
  };

  constructor(readonly opts: WsHandlerOptions<TContext>) {
    this.limits = opts.limits;
    this.config = opts.router._def._config;
    this.encoder = opts.experimental_encoder ?? null;
    const probe = {};
    this.plainJson = this.encoder === null && this.config.transformer.output.serialize(probe) === probe;
    this.fastPath = this.plainJson && opts.fastPath !== false;
  }

  /** A response message on the wire: the router's transformer applied, then the encoder (JSON by default). */
  encode(message: TRPCResponseMessage | { id: null; method: 'reconnect' }): string | Buffer {
    if (this.plainJson) return JSON.stringify(message);
    const transformed = 'method' in message ? message : transformTRPCResponse(this.config, message);
    if (!this.encoder) return JSON.stringify(transformed);
    const encoded = this.encoder.encode(transformed);
    return typeof encoded === 'string'
      ? encoded
      : Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  }

  /** An incoming frame decoded (JSON unless an encoder is set). */
  decode(data: Buffer, isBinary: boolean): unknown {
    if (!this.encoder) {
      // NOTE: the stock adapter's text for a binary frame without a binary encoder.
      if (isBinary)
        throw new Error(
          'jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data.',
        );
      return JSON.parse(data.toString('utf8'));
    }
    return this.encoder.decode(
      isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString('utf8'),
    );
  }

  acquirePrefix(prefix: string): PrefixGroup {
    let group = this.prefixGroups.get(prefix);
    if (!group) {
      group = new PrefixGroup(prefix);
      this.prefixGroups.set(prefix, group);
    }
    group.count += 1;
    return group;
  }

  releasePrefix(group: PrefixGroup): void {
    group.count -= 1;
    if (group.count <= 0 && this.prefixGroups.get(group.prefix) === group)
      this.prefixGroups.delete(group.prefix);
  }

  countDelivery(event: HubEvent): void {
    if (!this.opts.onDelivered) return;
    if (event !== this.deliveredEvent) {
      if (this.deliveredEvent) this.flushDelivered();
      else queueMicrotask(this.flushDelivered);
      this.deliveredEvent = event;
    }
    this.deliveredCount += 1;
  }

  errorMessage(
    id: RequestId | null,
    cause: unknown,
    extra: ErrorExtra,
    ctx: TContext | null,
    jsonrpc?: '2.0',
  ): string | Buffer {
    const error = getTRPCErrorFromUnknown(cause);
    return this.encode({
      id,
      jsonrpc,
      error: getErrorShape({
        config: this.config,
        error,
        type: extra.type ?? 'unknown',
        path: extra.path,
        input: extra.input,
        ctx: ctx ?? undefined,
      }),
    });
  }

  incrementPath(procPath: string): void {
    this.subscriptionsByPath.set(procPath, (this.subscriptionsByPath.get(procPath) ?? 0) + 1);
  }

  decrementPath(procPath: string): void {
    const n = (this.subscriptionsByPath.get(procPath) ?? 1) - 1;
    if (n <= 0) this.subscriptionsByPath.delete(procPath);
    else this.subscriptionsByPath.set(procPath, n);
  }

  /** One pass over every socket: send PING after `pingMs` of silence, terminate after `pongWaitMs`. */
  keepAlive(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      try {
        if (conn.pingSentAt) {
          if (now - conn.pingSentAt >= this.limits.pongWaitMs) conn.socket.terminate();
        } else if (now - conn.lastSeen >= this.limits.pingMs) {
          conn.pingSentAt = now;
          if (conn.socket.readyState === OPEN) conn.socket.send('PING');
        }
      } catch {
        // NOTE: one broken socket must not stop the pass (nor escape the interval).
        conn.closeWith(CloseCode.internalError, 'Internal error');
      }
    }
  }
}

/** One request id on a connection: a query, a mutation or a subscription until it stops. */
class Request<TContext> {
  stopped = false;
  readonly abort = new AbortController();
  live: LiveSubscription<TContext> | null = null;
  constructor(
    readonly conn: Connection<TContext>,
    readonly id: RequestId,
    readonly jsonrpc: '2.0' | undefined,
    readonly extra: { type: TRPCProcedureType; path: string; input: unknown },
  ) {}

  stop(sendStopped: boolean): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.live?.stop();
    const conn = this.conn;
    if (conn.subs.get(this.id) === this) {
      conn.subs.delete(this.id);
      conn.transport.decrementPath(this.extra.path);
    }
    if (sendStopped)
      conn.send(conn.transport.encode({ id: this.id, jsonrpc: this.jsonrpc, result: { type: 'stopped' } }));
  }

  fail(cause: unknown): void {
    this.conn.fail(this.id, cause, this.extra, this.jsonrpc);
  }
}

/**
 * Fast path: a subscription whose resolver returned a `LiveStream` is a hub sink. Each event is
 * serialised once and framed once per distinct subscription id (see `frameFor`), and the frame is
 * written straight to the socket.
 */
class LiveSubscription<TContext> implements HubSink {
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
    this.flushTimer ??= setTimeout(() => this.flushPending(), 50);
  }

  private flushPending(): void {
    this.flushTimer = undefined;
    if (this.state === 'stopped' || !this.pending) return;
    if (this.raw.writableLength > this.slowDropBytes) {
      this.flushTimer = setTimeout(() => this.flushPending(), 50);
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

/** What `createContext` settled to: requests waiting for it are answered with its error. */
type ContextResult<TContext> = { ok: true; ctx: TContext } | { ok: false; error: TRPCError | null };

class Connection<TContext> {
  readonly subs = new Map<RequestId, Request<TContext>>();
  /** The TCP socket under the WebSocket (fan-out frames are written to it directly). */
  readonly raw: Duplex;
  ctx: TContext | null = null;
  ctxPromise: Promise<ContextResult<TContext>> | null = null;
  lastSeen = Date.now();
  pingSentAt = 0;
  userId: string | null = null;
  expiryTimer: NodeJS.Timeout | undefined;
  authTimer: NodeJS.Timeout | undefined;
  closed = false;
  /** Queries and mutations awaiting their reply. */
  inFlight = 0;
  /** Aborted when the socket closes (the context's `signal`). */
  readonly abort = new AbortController();
  /** Reading is paused while the send buffer is over the drop mark (see `checkPressure`). */
  private readPaused = false;
  private drainWaiters: Array<() => void> | null = null;
  /** The remote address while the socket counts against the per-IP unauthenticated cap. */
  private unauthenticatedIp: string | null = null;
  /** The upgrade request, kept only until `createContext` has seen it. */
  private req: IncomingMessage | null;

  constructor(
    readonly transport: Transport<TContext>,
    readonly id: string,
    readonly socket: WebSocket,
    req: IncomingMessage,
  ) {
    this.req = req;
    this.raw = (socket as unknown as { _socket: Duplex })._socket;
    transport.opts.onOpen?.(id, req);
  }

  /**
   * Every write except the fan-out fast path goes through here: over the close mark the socket is
   * closed with 4008 instead of buffering more, over the drop mark reading stops until it drains.
   */
  send(data: string | Buffer): boolean {
    const socket = this.socket;
    if (socket.readyState !== OPEN) return false;
    if (this.raw.writableLength > this.transport.limits.slowCloseBytes) {
      this.transport.opts.onDropped?.('slow');
      this.closeWith(CloseCode.slowConsumer, 'Slow consumer');
      return false;
    }
    socket.send(data);
    this.checkPressure();
    return true;
  }

  /** Stops reading the socket while its send buffer is over the drop mark (no new work is taken). */
  checkPressure(): void {
    if (this.readPaused || this.raw.writableLength <= this.transport.limits.slowDropBytes) return;
    this.readPaused = true;
    this.socket.pause();
    this.raw.once('drain', this.onDrain);
  }

  private readonly onDrain = () => {
    this.readPaused = false;
    if (!this.closed) this.socket.resume();
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters) for (const wake of waiters) wake();
  };

  /** Resolves when the send buffer is back under the drop mark (at once if it is) or the socket closed. */
  drained(): Promise<void> | null {
    if (!this.readPaused || this.closed) return null;
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push(resolve);
    });
  }

  fail(id: RequestId | null, cause: unknown, extra: ErrorExtra = {}, jsonrpc?: '2.0'): void {
    const error = getTRPCErrorFromUnknown(cause);
    this.transport.opts.onError?.(error, {
      connectionId: this.id,
      path: extra.path,
      type: extra.type ?? 'unknown',
      input: extra.input,
      ctx: this.ctx,
    });
    this.send(this.transport.errorMessage(id, error, extra, this.ctx, jsonrpc));
  }

  /** Closes with `code` (the reason cut to what a close frame holds); never throws. */
  closeWith(code: number | undefined, reason = ''): void {
    const socket = this.socket;
    try {
      if (socket.readyState !== OPEN) socket.terminate();
      else if (code === undefined) socket.close();
      else socket.close(code, closeReason(reason));
    } catch {
      socket.terminate();
    }
  }

  /**
   * Closes with `code` without waiting for the peer's close frame (ws would wait 30 s): the close
   * frame is flushed, the TCP side ended, and the socket destroyed shortly after.
   */
  closeNow(code: number, reason: string): void {
    this.closeWith(code, reason);
    try {
      this.raw.end();
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.socket.terminate(), 1_000);
    timer.unref();
  }

  /** Waits for connection params when the client announced them, else authenticates at once. */
  open(url: URL): void {
    const req = this.req as IncomingMessage;
    this.countUnauthenticated(req);
    if (url.searchParams.get('connectionParams') !== '1') {
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      this.startContext(bearer ? { token: bearer } : null);
      return;
    }
    this.authTimer = setTimeout(() => {
      this.authTimer = undefined;
      if (this.ctxPromise || this.closed) return;
      guard(this, () => {
        this.fail(
          null,
          new TRPCErrorClass({ code: 'UNAUTHORIZED', message: 'No connection params received in time' }),
        );
        // NOTE: terminate, not close(): a silent client would hold the socket 30 s more for the handshake.
        this.closeNow(CloseCode.authTimeout, 'Authentication timeout');
      });
    }, this.transport.limits.authTimeoutMs);
    this.authTimer.unref();
  }

  private countUnauthenticated(req: IncomingMessage): void {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const counts = this.transport.unauthenticatedByIp;
    counts.set(ip, (counts.get(ip) ?? 0) + 1);
    this.unauthenticatedIp = ip;
  }

  private uncountUnauthenticated(): void {
    const ip = this.unauthenticatedIp;
    if (ip === null) return;
    this.unauthenticatedIp = null;
    const counts = this.transport.unauthenticatedByIp;
    const left = (counts.get(ip) ?? 1) - 1;
    if (left <= 0) counts.delete(ip);
    else counts.set(ip, left);
  }

  startContext(params: Record<string, string> | null): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    const req = this.req as IncomingMessage;
    this.req = null;
    this.ctxPromise = this.createContext(req, params);
  }

  /** Refuses the connection: every waiting request gets `error` (see `run`), then the socket closes. */
  refuse(error: TRPCError, code: number | undefined, reason: string): ContextResult<TContext> {
    this.fail(null, error);
    // NOTE: the stock adapter closes on the next tick. Pulse's own refusals are often instant, and a
    // client's first requests (sent right after its connectionParams) would then meet a closed
    // socket and fail with no code: the socket lingers briefly so they too get the refusal.
    const timer = setTimeout(() => this.closeWith(code, reason), REFUSAL_LINGER_MS);
    timer.unref();
    return { ok: false, error };
  }

  private async createContext(
    req: IncomingMessage,
    params: Record<string, string> | null,
  ): Promise<ContextResult<TContext>> {
    const { opts, limits, userConnections } = this.transport;
    try {
      const ctx = (await opts.createContext?.({
        connectionId: this.id,
        req,
        connectionParams: params,
        socket: this.socket,
        signal: this.abort.signal,
      })) as TContext;
      // NOTE: the socket may have closed while the token was checked: count nothing for it.
      if (this.closed) return { ok: false, error: null };
      const who = opts.identify?.(ctx) ?? null;
      if (who) {
        const count = (userConnections.get(who.userId) ?? 0) + 1;
        if (count > limits.maxConnectionsPerUser) {
          throw new TRPCErrorClass({
            code: 'TOO_MANY_REQUESTS',
            message: `Connection limit (${limits.maxConnectionsPerUser}) reached for this user`,
          });
        }
        userConnections.set(who.userId, count);
        this.userId = who.userId;
        this.armExpiry(who.expiresAt);
      }
      this.uncountUnauthenticated();
      this.ctx = ctx;
      return { ok: true, ctx };
    } catch (cause) {
      if (this.closed) return { ok: false, error: null };
      const error = getTRPCErrorFromUnknown(cause);
      // NOTE: fixed close reasons: the error text (which may quote token claims) goes in the error
      // frame, never in the close frame, which holds 123 bytes at most.
      const code = opts.closeCodeFor ? opts.closeCodeFor(error) : pulseCloseCodeFor(error);
      return this.refuse(error, code, code === undefined ? '' : (CLOSE_REASONS[code] ?? ''));
    }
  }

  /**
   * The socket's rights end with the token; wsLink reconnects and re-reads connectionParams.
   * NOTE: setTimeout holds at most 2^31-1 ms (24.8 days): a longer token re-arms until its real expiry.
   */
  private armExpiry(expiresAt: number): void {
    if (!Number.isFinite(expiresAt) || this.closed) return;
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) {
      this.closeWith(CloseCode.unauthorized, 'Token expired');
      return;
    }
    this.expiryTimer = setTimeout(
      () => guard(this, () => this.armExpiry(expiresAt)),
      Math.min(remaining, MAX_TIMER_MS),
    );
    this.expiryTimer.unref();
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    this.pingSentAt = 0;
    const transport = this.transport;
    if (!isBinary) {
      // PING/PONG are text whatever the encoder (as the stock adapter).
      if (data.length === 4) {
        const text = data.toString('latin1');
        if (text === 'PONG') return;
        if (text === 'PING') {
          if (!transport.opts.dangerouslyDisablePong) this.send('PONG');
          return;
        }
      }
    }
    if (!this.ctxPromise) {
      let params: Record<string, string> | null;
      try {
        params = parseConnectionParams(data, isBinary, transport);
      } catch (cause) {
        // NOTE: as the stock adapter: PARSE_ERROR and a plain close, not 4401 (the token may be fine).
        const error = getTRPCErrorFromUnknown(cause);
        clearTimeout(this.authTimer);
        this.authTimer = undefined;
        this.ctxPromise = Promise.resolve(this.refuse(error, undefined, ''));
        return;
      }
      this.startContext(params);
      return;
    }
    let parsed: unknown;
    try {
      parsed = transport.decode(data, isBinary);
    } catch (cause) {
      // NOTE: the parser's message, as the stock adapter sends it.
      this.fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', cause }));
      return;
    }
    const items = Array.isArray(parsed) ? parsed : [parsed];
    const { maxBatch } = this.transport.limits;
    if (items.length === 0 || items.length > maxBatch) {
      this.fail(
        null,
        new TRPCErrorClass({
          code: items.length === 0 ? 'BAD_REQUEST' : 'PAYLOAD_TOO_LARGE',
          message:
            items.length === 0
              ? 'Empty batch'
              : `Batch of ${items.length} requests exceeds the limit of ${maxBatch}`,
        }),
      );
      return;
    }
    for (let index = 0; index < items.length; index++) {
      const item: unknown = items[index];
      let msg: TRPCClientOutgoingMessage;
      try {
        msg = parseTRPCMessage(item, this.transport.config.transformer);
      } catch (cause) {
        const rawId = (item as { id?: unknown } | null)?.id;
        const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
        this.fail(
          id,
          new TRPCErrorClass({
            code: 'PARSE_ERROR',
            message: `Invalid request: ${(cause as Error).message}`,
            cause,
          }),
        );
        continue;
      }
      this.handleRequest(msg, index);
    }
  }

  private handleRequest(msg: TRPCClientOutgoingMessage, batchIndex: number): void {
    const { id, jsonrpc } = msg;
    if (id === null || id === undefined) {
      this.fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', message: '`id` is required' }), {}, jsonrpc);
      return;
    }
    if (msg.method === 'subscription.stop') {
      this.subs.get(id)?.stop(true);
      return;
    }
    const { path: procPath, lastEventId } = msg.params;
    let { input } = msg.params;
    const type = msg.method;
    if (lastEventId !== undefined) {
      if (input !== null && typeof input === 'object' && !Array.isArray(input))
        input = { ...input, lastEventId };
      else input ??= { lastEventId };
    }
    const extra = { type, path: procPath, input };

    if (type === 'subscription') {
      if (this.subs.has(id)) {
        this.fail(
          id,
          new TRPCErrorClass({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }),
          extra,
          jsonrpc,
        );
        return;
      }
      const { maxSubscriptions } = this.transport.limits;
      if (this.subs.size >= maxSubscriptions) {
        this.fail(
          id,
          new TRPCErrorClass({
            code: 'TOO_MANY_REQUESTS',
            message: `Subscription limit (${maxSubscriptions}) reached on this connection`,
          }),
          extra,
          jsonrpc,
        );
        return;
      }
    } else {
      const maxInFlight = this.transport.limits.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
      if (this.inFlight >= maxInFlight) {
        this.fail(
          id,
          new TRPCErrorClass({
            code: 'TOO_MANY_REQUESTS',
            message: `Too many requests in flight (limit ${maxInFlight}) on this connection`,
          }),
          extra,
          jsonrpc,
        );
        return;
      }
      this.inFlight += 1;
    }
    const request = new Request(this, id, jsonrpc, extra);
    if (type === 'subscription') {
      // Reserve the id at once so a duplicate in the same frame is refused.
      this.subs.set(id, request);
      this.transport.incrementPath(procPath);
    }
    this.run(request, batchIndex).catch((cause) => {
      // NOTE: e.g. a result JSON.stringify refuses (BigInt, cycle): that request fails, nothing else.
      guard(this, () => {
        request.stop(false);
        request.fail(cause);
      });
    });
  }

  private async run(request: Request<TContext>, batchIndex: number): Promise<void> {
    const { type, path: procPath, input } = request.extra;
    if (type !== 'subscription') {
      try {
        await this.call(request, batchIndex);
      } finally {
        this.inFlight -= 1;
      }
      return;
    }
    const res = await (this.ctxPromise as Promise<ContextResult<TContext>>);
    if (!res.ok) {
      request.stop(false);
      // As the stock adapter: each request waiting for a refused context gets the refusal.
      if (res.error && !this.closed) request.fail(res.error);
      return;
    }
    let result: unknown;
    try {
      result = await callTRPCProcedure({
        router: this.transport.opts.router,
        path: procPath,
        getRawInput: async () => input,
        ctx: res.ctx,
        type,
        signal: request.abort.signal,
        batchIndex,
      });
    } catch (cause) {
      request.stop(false);
      request.fail(cause);
      return;
    }
    if (request.stopped || this.closed) {
      request.stop(false);
      return;
    }
    if (result instanceof LiveStream && this.transport.fastPath) {
      request.live = new LiveSubscription(request, result.spec, result.hub);
      return;
    }
    const iterable = isObservable(result) ? observableToAsyncIterable(result, request.abort.signal) : result;
    if (!isAsyncIterableLike(iterable)) {
      request.stop(false);
      request.fail(
        new TRPCErrorClass({
          code: 'INTERNAL_SERVER_ERROR',
          message: `Subscription ${procPath} did not return an observable or a AsyncGenerator`,
        }),
      );
      return;
    }
    this.send(
      this.transport.encode({ id: request.id, jsonrpc: request.jsonrpc, result: { type: 'started' } }),
    );
    void this.iterate(request, iterable);
  }

  /** A query or a mutation: one reply. */
  private async call(request: Request<TContext>, batchIndex: number): Promise<void> {
    const res = await (this.ctxPromise as Promise<ContextResult<TContext>>);
    if (!res.ok) {
      if (res.error && !this.closed) request.fail(res.error);
      return;
    }
    const { type, path: procPath, input } = request.extra;
    let result: unknown;
    try {
      result = await callTRPCProcedure({
        router: this.transport.opts.router,
        path: procPath,
        getRawInput: async () => input,
        ctx: res.ctx,
        type,
        signal: request.abort.signal,
        batchIndex,
      });
    } catch (cause) {
      request.fail(cause);
      return;
    }
    if (isAsyncIterableLike(result) || isObservable(result)) {
      request.fail(
        new TRPCErrorClass({
          code: 'UNSUPPORTED_MEDIA_TYPE',
          message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets`,
        }),
      );
      return;
    }
    this.send(
      this.transport.encode({
        id: request.id,
        jsonrpc: request.jsonrpc,
        result: { type: 'data', data: result },
      }),
    );
  }

  /** Generic path for any other AsyncIterable (an async generator resolver), as the stock adapter does. */
  private async iterate(request: Request<TContext>, iterable: AsyncIterable<unknown>): Promise<void> {
    const iterator = iterable[Symbol.asyncIterator]();
    const signal = request.abort.signal;
    // NOTE: one abort promise per step, settled (and its listener removed) when the step ends.
    // Racing every next() against one long-lived promise keeps a reaction (and with it every
    // yielded value) per step reachable until the subscription stops.
    let next: IteratorResult<unknown> | 'abort' | null = null;
    try {
      while (!signal.aborted) {
        next = await nextOrAbort(iterator, signal);
        if (next === 'abort') break;
        if (next.done) {
          request.stop(true);
          break;
        }
        const value = next.value;
        next = null;
        const result = isTrackedEnvelope(value)
          ? { type: 'data' as const, data: { id: value[0], data: value[1] }, id: value[0] }
          : { type: 'data' as const, data: value };
        if (!this.send(this.transport.encode({ id: request.id, jsonrpc: request.jsonrpc, result }))) break;
        // Back-pressure: pull the next value only once the socket has drained under the drop mark.
        const drained = this.drained();
        if (drained) await drained;
      }
    } catch (cause) {
      // As the stock adapter: the error, then `stopped` (the socket stays open).
      if (!request.stopped) {
        request.fail(cause);
        request.stop(true);
      }
    } finally {
      next = null;
      void Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => {});
    }
  }

  onClose(): void {
    const transport = this.transport;
    this.closed = true;
    this.req = null;
    transport.connections.delete(this);
    clearTimeout(this.authTimer);
    clearTimeout(this.expiryTimer);
    this.uncountUnauthenticated();
    this.abort.abort();
    this.onDrain();
    for (const sub of [...this.subs.values()]) sub.stop(false);
    this.subs.clear();
    if (this.userId) {
      const left = (transport.userConnections.get(this.userId) ?? 1) - 1;
      if (left <= 0) transport.userConnections.delete(this.userId);
      else transport.userConnections.set(this.userId, left);
    }
    // NOTE: after an in-flight createContext settles, so whatever it registered is released too.
    void (this.ctxPromise ?? Promise.resolve(null)).then(() => transport.opts.onClose?.(this.id, this.ctx));
  }
}

/** Pulse's close code for a refused context: 4429 for the per-user cap, else 4401 (refresh the token). */
function pulseCloseCodeFor(error: TRPCError): number {
  return error.code === 'TOO_MANY_REQUESTS' ? CloseCode.tooManyConnections : CloseCode.unauthorized;
}

/** The fixed close reason sent with each close code. */
const CLOSE_REASONS: Record<number, string> = {
  [CloseCode.unauthorized]: 'Unauthorized',
  [CloseCode.tooManyConnections]: 'Too many connections',
};

/** How long a refused socket stays open to answer requests already on their way (see `refuse`). */
const REFUSAL_LINGER_MS = 50;

/** The longest delay setTimeout holds (2^31-1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One `iterator.next()` raced against `signal`; the abort listener lives only as long as the step. */
function nextOrAbort(
  iterator: AsyncIterator<unknown>,
  signal: AbortSignal,
): Promise<IteratorResult<unknown> | 'abort'> {
  if (signal.aborted) return Promise.resolve('abort');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('abort');
    signal.addEventListener('abort', onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (cause) => {
        signal.removeEventListener('abort', onAbort);
        reject(cause);
      },
    );
  });
}

/** Runs `fn`; an exception closes that one socket (1011) instead of escaping into the event loop. */
function guard<TContext>(conn: Connection<TContext>, fn: () => void): void {
  try {
    fn();
  } catch (cause) {
    try {
      conn.transport.opts.onError?.(
        new TRPCErrorClass({ code: 'INTERNAL_SERVER_ERROR', message: 'WebSocket handler failed', cause }),
        { connectionId: conn.id },
      );
    } catch {
      // a failing log hook must not escape either
    }
    conn.closeWith(CloseCode.internalError, 'Internal error');
  }
}

/** `reason` cut to the 123 UTF-8 bytes a close frame holds, on a character boundary. */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let bytes = 0;
  let out = '';
  for (const char of reason) {
    const size = Buffer.byteLength(char);
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break;
    bytes += size;
    out += char;
  }
  return out;
}

/** Serves one accepted WebSocket: wires its listeners so that no exception escapes them. */
function serveSocket<TContext>(
  transport: Transport<TContext>,
  socket: WebSocket,
  req: IncomingMessage,
  url: URL,
) {
  const opts = transport.opts;
  // NOTE: not randomUUID(): Node builds it by concatenation, and the rope of ~15 string pieces
  // stays alive with the connection (≈0.5 KB per socket); a hex string is one flat allocation.
  const conn = new Connection<TContext>(transport, randomBytes(16).toString('hex'), socket, req);
  transport.connections.add(conn);
  // NOTE: no listener lets an exception escape: a failure closes that one socket (see `guard`).
  socket.on('message', (data: Buffer, isBinary: boolean) =>
    guard(conn, () => conn.onMessage(data, isBinary)),
  );
  socket.on('error', (cause) => {
    try {
      opts.onError?.(socketError(cause), { connectionId: conn.id });
    } catch {
      // a failing log hook must not escape
    }
  });
  socket.once('close', () => guard(conn, () => conn.onClose()));
  guard(conn, () => conn.open(url));
}

/** Keep-alive, reconnect broadcast, stats and shutdown of a transport, whichever way sockets arrive. */
function transportHandle<TContext>(transport: Transport<TContext>, wss: WebSocketServer): WsTransport {
  const { connections, userConnections, subscriptionsByPath, limits } = transport;
  // NOTE: one interval for every socket's keep-alive instead of two timers per socket; pingMs <= 0
  // turns server pings off (clients' own PINGs are still answered).
  const keepAlive =
    limits.pingMs > 0
      ? setInterval(() => transport.keepAlive(), Math.max(50, Math.min(limits.pingMs, limits.pongWaitMs) / 4))
      : undefined;
  keepAlive?.unref();
  wss.once('close', () => clearInterval(keepAlive));

  const broadcastReconnectNotification = () => {
    const notice = transport.encode({ id: null, method: 'reconnect' });
    for (const conn of connections) if (conn.socket.readyState === OPEN) conn.socket.send(notice);
  };

  return {
    wss,
    broadcastReconnectNotification,
    stats() {
      let subscriptions = 0;
      for (const conn of connections) subscriptions += conn.subs.size;
      return {
        connections: connections.size,
        subscriptions,
        subscriptionsByPath: Object.fromEntries(subscriptionsByPath),
        users: userConnections.size,
      };
    },
    async shutdown(graceMs = 1000) {
      transport.shuttingDown = true;
      clearInterval(keepAlive);
      broadcastReconnectNotification();
      if (connections.size > 0 && graceMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          timer.unref();
          const check = setInterval(() => {
            if (connections.size === 0) {
              clearInterval(check);
              clearTimeout(timer);
              resolve();
            }
          }, 20);
          check.unref();
        });
      }
      for (const conn of connections) conn.closeWith(CloseCode.goingAway, 'Server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const conn of connections) conn.socket.terminate();
    },
  };
}

/**
 * Pulse's transport on an HTTP server: upgrades on `opts.path` (default `/trpc`) are checked (target,
 * origin, shutdown, per-IP unauthenticated cap) before the handshake.
 */
export function attachWebSocket<TContext>(server: Server, opts: WsHandlerOptions<TContext>): WsTransport {
  const transport = new Transport(opts);
  const { unauthenticatedByIp } = transport;
  const path = opts.path ?? '/trpc';
  const maxUnauthenticated = opts.limits.maxUnauthenticatedPerIp ?? DEFAULT_MAX_UNAUTHENTICATED_PER_IP;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.limits.maxPayloadBytes,
    // NOTE: must stay off: fan-out frames are pre-built uncompressed frames (see LiveSubscription.write).
    perMessageDeflate: false,
    clientTracking: true,
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      const url = parseTarget(req.url);
      if (!url) {
        rejectUpgrade(socket, 400, 'Bad Request');
        return;
      }
      if (url.pathname !== path) {
        rejectUpgrade(socket, 404, 'Not Found');
        return;
      }
      const origin = req.headers.origin;
      if (origin && opts.allowedOrigins.length > 0 && !opts.allowedOrigins.includes(origin)) {
        rejectUpgrade(socket, 403, 'Origin not allowed');
        return;
      }
      if (transport.shuttingDown) {
        rejectUpgrade(socket, 503, 'Shutting down');
        return;
      }
      const ip = req.socket.remoteAddress ?? 'unknown';
      if ((unauthenticatedByIp.get(ip) ?? 0) >= maxUnauthenticated) {
        rejectUpgrade(socket, 429, 'Too Many Requests');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        try {
          serveSocket(transport, ws, req, url);
        } catch {
          ws.terminate();
        }
      });
    } catch {
      // NOTE: whatever the request held, it ends this socket only.
      socket.destroy();
    }
  });

  return transportHandle(transport, wss);
}

/** Options of `applyPulseWSSHandler`: the stock `applyWSSHandler`'s, plus Pulse's limits. */
export interface PulseWSSHandlerOptions<TRouter extends AnyTRPCRouter> {
  wss: WebSocketServer;
  router: TRouter;
  /** As the stock adapter's: `{ req, res, info }` (`info.connectionParams`); may be omitted. */
  createContext?: (opts: {
    req: IncomingMessage;
    res: WebSocket;
    info: {
      connectionParams: Record<string, string> | null;
      calls: [];
      isBatchCall: false;
      accept: null;
      type: 'unknown';
      signal: AbortSignal;
      url: null;
    };
  }) => unknown;
  onError?: (opts: {
    error: TRPCError;
    path: string | undefined;
    type: TRPCProcedureType | 'unknown';
    ctx: unknown;
    req: IncomingMessage;
    input: unknown;
  }) => void;
  prefix?: string;
  keepAlive?: { enabled: boolean; pingMs?: number; pongWaitMs?: number };
  dangerouslyDisablePong?: boolean;
  experimental_encoder?: Encoder;
  /** Pulse's limits (defaults: `DEFAULT_WS_LIMITS`). */
  limits?: Partial<WsLimits>;
  /** See `WsHandlerOptions.fastPath`. */
  fastPath?: boolean;
}

/** Limits `applyPulseWSSHandler` applies unless told otherwise (Pulse's configuration defaults). */
export const DEFAULT_WS_LIMITS: WsLimits = {
  maxPayloadBytes: 64 * 1024,
  maxBatch: 128,
  maxSubscriptions: 100,
  maxConnectionsPerUser: 50,
  authTimeoutMs: 10_000,
  pingMs: 0,
  pongWaitMs: 5_000,
  slowDropBytes: 256 * 1024,
  slowCloseBytes: 1024 * 1024,
};

/**
 * Drop-in for tRPC's `applyWSSHandler` on any router: the same options and wire behaviour (see
 * docs/transport.md for the deliberate differences), with Pulse's limits and its LiveStream fast
 * path (off when the server negotiates permessage-deflate, uses an encoder or a transformer).
 */
export function applyPulseWSSHandler<TRouter extends AnyTRPCRouter>(
  opts: PulseWSSHandlerOptions<TRouter>,
): WsTransport {
  const keepAlive = opts.keepAlive;
  const limits: WsLimits = {
    ...DEFAULT_WS_LIMITS,
    maxPayloadBytes: opts.wss.options.maxPayload ?? DEFAULT_WS_LIMITS.maxPayloadBytes,
    ...(keepAlive?.enabled
      ? { pingMs: keepAlive.pingMs ?? 30_000, pongWaitMs: keepAlive.pongWaitMs ?? 5_000 }
      : {}),
    ...opts.limits,
  };
  const requests = new Map<string, IncomingMessage>();
  const transport = new Transport<unknown>({
    router: opts.router,
    limits,
    allowedOrigins: [],
    experimental_encoder: opts.experimental_encoder,
    dangerouslyDisablePong: opts.dangerouslyDisablePong,
    // As the stock adapter: a refused context is followed by a plain close.
    closeCodeFor: () => undefined,
    fastPath: opts.fastPath !== false && !opts.wss.options.perMessageDeflate,
    createContext: opts.createContext
      ? ({ req, connectionParams, socket, signal }) =>
          opts.createContext?.({
            req,
            res: socket,
            info: {
              connectionParams,
              calls: [],
              isBatchCall: false,
              accept: null,
              type: 'unknown',
              signal,
              url: null,
            },
          })
      : undefined,
    onError: opts.onError
      ? (error, info) =>
          opts.onError?.({
            error,
            path: info.path,
            type: info.type ?? 'unknown',
            ctx: info.ctx,
            req: requests.get(info.connectionId) as IncomingMessage,
            input: info.input,
          })
      : undefined,
    onClose: (connectionId) => requests.delete(connectionId),
    onOpen: opts.onError ? (connectionId, req) => requests.set(connectionId, req) : undefined,
  });
  const maxUnauthenticated = limits.maxUnauthenticatedPerIp ?? DEFAULT_MAX_UNAUTHENTICATED_PER_IP;
  opts.wss.on('connection', (socket: WebSocket, req: IncomingMessage) => {
    try {
      if (opts.prefix && !req.url?.startsWith(opts.prefix)) return;
      const url = parseTarget(req.url);
      const ip = req.socket.remoteAddress ?? 'unknown';
      if (!url || (transport.unauthenticatedByIp.get(ip) ?? 0) >= maxUnauthenticated) {
        socket.terminate();
        return;
      }
      serveSocket(transport, socket, req, url);
    } catch {
      socket.terminate();
    }
  });
  return transportHandle(transport, opts.wss);
}

/** The upgrade target as a URL, or null when it does not parse (`GET //[`, `http://[::1/trpc`). */
function parseTarget(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return null;
  }
}

/**
 * A socket-level error (bad frame, oversized message, reset) as the client's protocol error, so it is
 * logged as a refusal (debug, no stack), not as a server failure.
 */
function socketError(cause: unknown): TRPCError {
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : 'WebSocket error';
  return new TRPCErrorClass({
    code: code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST',
    message,
  });
}

/** Distinct subscription-id prefixes whose frames one event keeps (beyond it, frames are not cached). */
const FRAME_CACHE_LIMIT = 64;
const TAIL_KEY = '\u0000tail';

/**
 * The complete frame of `{"id":…,"result":{"type":"data",…}}` for one event and one subscription-id
 * prefix, shared by every subscription with that id (wsLink numbers subscriptions per client, so
 * many clients share ids). Only the first `FRAME_CACHE_LIMIT` prefixes of an event get one; the
 * others return null and write their own header + id before the shared tail.
 */
function sharedFrame(event: HubEvent, group: PrefixGroup): Buffer | null {
  const cache = event.cache;
  const cached = cache.get(group.prefix) as Buffer | undefined;
  if (cached) return cached;
  if (cache.size >= FRAME_CACHE_LIMIT) return null;
  const frame = textFrame(group.bytes, tailFor(event));
  cache.set(group.prefix, frame);
  return frame;
}

/** The subscriptions of a transport that share one id prefix `{"id":…,`, and its frame header. */
class PrefixGroup {
  count = 0;
  readonly bytes: Buffer;
  private head: Buffer | null = null;
  private headLength = -1;
  constructor(readonly prefix: string) {
    this.bytes = Buffer.from(prefix);
  }
  /**
   * Frame header + prefix for a tail of `tailLength` bytes. Rebuilt only when the length changes and
   * never mutated, since a write still queued on some socket may hold it.
   */
  headFor(tailLength: number): Buffer {
    if (this.headLength !== tailLength || !this.head) {
      this.head = frameHead(this.bytes, this.bytes.length + tailLength);
      this.headLength = tailLength;
    }
    return this.head;
  }
}

/** `"result":{"type":"data",…}}`: the event serialised once, tracked id included. */
function tailFor(event: HubEvent): Buffer {
  let tail = event.cache.get(TAIL_KEY) as Buffer | undefined;
  if (tail === undefined) {
    const json = event.json();
    if (event.id === undefined) tail = Buffer.from(`"result":{"type":"data","data":${json}}}`);
    else {
      const idJson = JSON.stringify(event.id);
      tail = Buffer.from(`"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`);
    }
    event.cache.set(TAIL_KEY, tail);
  }
  return tail;
}

/** A frame header for a payload of `length` bytes, followed by `prefix` (the payload's start). */
function frameHead(prefix: Buffer, length: number): Buffer {
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const head = Buffer.alloc(headerLength + prefix.length);
  head[0] = 0x81;
  if (headerLength === 2) head[1] = length;
  else if (headerLength === 4) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  prefix.copy(head, headerLength);
  return head;
}

/** An unmasked, unfragmented, uncompressed text frame (RFC 6455 §5.2) holding `head` + `body`. */
export function textFrame(head: Buffer, body: Buffer): Buffer {
  const length = head.length + body.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text
  if (headerLength === 2) frame[1] = length;
  else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  head.copy(frame, headerLength);
  body.copy(frame, headerLength + head.length);
  return frame;
}

function itemFrame(prefix: string, item: LiveItem<unknown>): string {
  const json = JSON.stringify(item.data);
  if (item.id === undefined) return `${prefix}"result":{"type":"data","data":${json}}}`;
  const idJson = JSON.stringify(item.id);
  return `${prefix}"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`;
}

/**
 * The first frame of a `?connectionParams=1` socket, with the stock adapter's errors: PARSE_ERROR
 * "Malformed TRPCConnectionParamsMessage" for a frame that is not an object, "Invalid connection
 * params shape" for `data` that is not null or an object of strings.
 */
function parseConnectionParams(
  frame: Buffer,
  isBinary: boolean,
  transport: { decode(data: Buffer, isBinary: boolean): unknown },
): Record<string, string> | null {
  let msg: unknown;
  try {
    msg = transport.decode(frame, isBinary);
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
      throw new Error('Message was not an object');
  } catch (cause) {
    throw new TRPCErrorClass({
      code: 'PARSE_ERROR',
      message: 'Malformed TRPCConnectionParamsMessage',
      cause,
    });
  }
  const data = (msg as { data?: unknown }).data;
  if (data === null) return null;
  if (data === undefined || typeof data !== 'object' || Array.isArray(data))
    throw new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Invalid connection params shape' });
  const params: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string')
      throw new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Invalid connection params shape' });
    params[key] = value;
  }
  return params;
}

function isAsyncIterableLike(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && Symbol.asyncIterator in value;
}

function rejectUpgrade(socket: Duplex, status: number, message: string) {
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}
