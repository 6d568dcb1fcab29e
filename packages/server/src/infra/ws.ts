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
} from '@trpc/server';
import { parseTRPCMessage, type TRPCClientOutgoingMessage } from '@trpc/server/rpc';
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
}

export interface WsConnectionInfo {
  connectionId: string;
  req: IncomingMessage;
  /** Parsed `connectionParams` (null when the client sent none). */
  connectionParams: Record<string, string> | null;
}

export interface WsHandlerOptions<TContext> {
  router: AnyTRPCRouter;
  path?: string;
  limits: WsLimits;
  allowedOrigins: string[];
  createContext(info: WsConnectionInfo): Promise<TContext>;
  /** The user a context belongs to (per-user connection limit) and when its rights end. */
  identify(ctx: TContext): { userId: string; expiresAt: number } | null;
  onClose?(connectionId: string, ctx: TContext | null): void;
  onError?(error: TRPCError, info: { path?: string; connectionId: string }): void;
  onDelivered?(count: number, event: HubEvent): void;
  onDropped?(reason: 'slow' | 'coalesced'): void;
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
  /** Tells every client to reconnect (tRPC `reconnect` notification), then closes sockets after `graceMs`. */
  shutdown(graceMs?: number): Promise<void>;
}

const OPEN = 1;
const TEXT = { binary: false } as const;

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
  shuttingDown = false;
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
  ): string {
    const error = getTRPCErrorFromUnknown(cause);
    return JSON.stringify({
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
      if (conn.pingSentAt) {
        if (now - conn.pingSentAt >= this.limits.pongWaitMs) conn.socket.terminate();
      } else if (now - conn.lastSeen >= this.limits.pingMs) {
        conn.pingSentAt = now;
        if (conn.socket.readyState === OPEN) conn.socket.send('PING');
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
      conn.send(JSON.stringify({ id: this.id, jsonrpc: this.jsonrpc, result: { type: 'stopped' } }));
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
      JSON.stringify({ id: this.request.id, jsonrpc: this.request.jsonrpc, result: { type: 'started' } }),
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
    if (amount > this.slowDropBytes && !this.durable) {
      this.hold(event);
      return;
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

class Connection<TContext> {
  readonly subs = new Map<RequestId, Request<TContext>>();
  /** The TCP socket under the WebSocket (fan-out frames are written to it directly). */
  readonly raw: Duplex;
  ctx: TContext | null = null;
  ctxPromise: Promise<TContext | null> | null = null;
  lastSeen = Date.now();
  pingSentAt = 0;
  userId: string | null = null;
  expiryTimer: NodeJS.Timeout | undefined;
  authTimer: NodeJS.Timeout | undefined;
  closed = false;
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
  }

  send(data: string | Buffer): void {
    if (this.socket.readyState === OPEN) this.socket.send(data, TEXT);
  }

  fail(id: RequestId | null, cause: unknown, extra: ErrorExtra = {}, jsonrpc?: '2.0'): void {
    const error = getTRPCErrorFromUnknown(cause);
    this.transport.opts.onError?.(error, { path: extra.path, connectionId: this.id });
    this.send(this.transport.errorMessage(id, error, extra, this.ctx, jsonrpc));
  }

  closeWith(code: number, reason: string): void {
    if (this.socket.readyState === OPEN) this.socket.close(code, reason.slice(0, 120));
    else this.socket.terminate();
  }

  /** Waits for connection params when the client announced them, else authenticates at once. */
  open(url: URL): void {
    const req = this.req as IncomingMessage;
    if (url.searchParams.get('connectionParams') !== '1') {
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      this.startContext(bearer ? { token: bearer } : null);
      return;
    }
    this.authTimer = setTimeout(() => {
      this.authTimer = undefined;
      if (this.ctxPromise) return;
      this.fail(
        null,
        new TRPCErrorClass({ code: 'UNAUTHORIZED', message: 'No connection params received in time' }),
      );
      this.closeWith(CloseCode.authTimeout, 'Authentication timeout');
    }, this.transport.limits.authTimeoutMs);
    this.authTimer.unref();
  }

  startContext(params: Record<string, string> | null): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    const req = this.req as IncomingMessage;
    this.req = null;
    this.ctxPromise = this.createContext(req, params);
  }

  private async createContext(
    req: IncomingMessage,
    params: Record<string, string> | null,
  ): Promise<TContext | null> {
    const { opts, limits, userConnections } = this.transport;
    try {
      const ctx = await opts.createContext({ connectionId: this.id, req, connectionParams: params });
      // NOTE: the socket may have closed while the token was checked: count nothing for it.
      if (this.closed) return null;
      const who = opts.identify(ctx);
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
        const remaining = who.expiresAt - Date.now();
        // NOTE: the socket's rights end with the token; wsLink reconnects and re-reads connectionParams.
        this.expiryTimer = setTimeout(
          () => this.closeWith(CloseCode.unauthorized, 'Token expired'),
          Math.min(Math.max(remaining, 0), 2 ** 31 - 1),
        );
        this.expiryTimer.unref();
      }
      if (this.closed) return null;
      this.ctx = ctx;
      return ctx;
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      this.fail(null, error);
      setImmediate(() =>
        this.closeWith(
          error.code === 'TOO_MANY_REQUESTS' ? CloseCode.tooManyConnections : CloseCode.unauthorized,
          error.message,
        ),
      );
      return null;
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    this.pingSentAt = 0;
    if (isBinary) {
      this.fail(
        null,
        new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Binary frames are not supported' }),
      );
      return;
    }
    const text = data.toString('utf8');
    if (text === 'PONG') return;
    if (text === 'PING') {
      this.send('PONG');
      return;
    }
    if (!this.ctxPromise) {
      let params: Record<string, string> | null;
      try {
        params = parseConnectionParams(JSON.parse(text));
      } catch (cause) {
        this.fail(
          null,
          new TRPCErrorClass({
            code: 'PARSE_ERROR',
            message: `Malformed connectionParams message: ${(cause as Error).message}`,
            cause,
          }),
        );
        setImmediate(() => this.closeWith(CloseCode.unauthorized, 'Malformed connectionParams'));
        this.ctxPromise = Promise.resolve(null);
        return;
      }
      this.startContext(params);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      this.fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Invalid JSON', cause }));
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
    }
    const request = new Request(this, id, jsonrpc, extra);
    if (type === 'subscription') {
      // Reserve the id at once so a duplicate in the same frame is refused.
      this.subs.set(id, request);
      this.transport.incrementPath(procPath);
    }
    void this.run(request, batchIndex);
  }

  private async run(request: Request<TContext>, batchIndex: number): Promise<void> {
    const ctx = await (this.ctxPromise ?? Promise.resolve(null));
    if (!ctx) {
      request.stop(false);
      return;
    }
    const { type, path: procPath, input } = request.extra;
    let result: unknown;
    try {
      result = await callTRPCProcedure({
        router: this.transport.opts.router,
        path: procPath,
        getRawInput: async () => input,
        ctx,
        type,
        signal: request.abort.signal,
        batchIndex,
      });
    } catch (cause) {
      request.stop(false);
      request.fail(cause);
      return;
    }
    if (type !== 'subscription') {
      if (isAsyncIterableLike(result)) {
        request.fail(
          new TRPCErrorClass({
            code: 'UNSUPPORTED_MEDIA_TYPE',
            message: `Cannot return an async iterable from a ${type} procedure with WebSockets`,
          }),
        );
        return;
      }
      this.send(
        JSON.stringify({ id: request.id, jsonrpc: request.jsonrpc, result: { type: 'data', data: result } }),
      );
      return;
    }
    if (request.stopped || this.closed) {
      request.stop(false);
      return;
    }
    if (result instanceof LiveStream) {
      request.live = new LiveSubscription(request, result.spec, result.hub);
      return;
    }
    if (!isAsyncIterableLike(result)) {
      request.stop(false);
      request.fail(
        new TRPCErrorClass({
          code: 'INTERNAL_SERVER_ERROR',
          message: `Subscription ${procPath} did not return an AsyncIterable`,
        }),
      );
      return;
    }
    this.send(JSON.stringify({ id: request.id, jsonrpc: request.jsonrpc, result: { type: 'started' } }));
    void this.iterate(request, result);
  }

  /** Generic path for any other AsyncIterable (an async generator resolver), as the stock adapter does. */
  private async iterate(request: Request<TContext>, iterable: AsyncIterable<unknown>): Promise<void> {
    const iterator = iterable[Symbol.asyncIterator]();
    const signal = request.abort.signal;
    const aborted = new Promise<'abort'>((resolve) =>
      signal.addEventListener('abort', () => resolve('abort')),
    );
    try {
      while (true) {
        const next = await Promise.race([iterator.next(), aborted]);
        if (next === 'abort') break;
        if (next.done) {
          request.stop(true);
          break;
        }
        const value = next.value;
        const result = isTrackedEnvelope(value)
          ? { type: 'data', data: { id: value[0], data: value[1] }, id: value[0] }
          : { type: 'data', data: value };
        this.send(JSON.stringify({ id: request.id, jsonrpc: request.jsonrpc, result }));
      }
    } catch (cause) {
      // As the stock adapter: the error, then `stopped` (the socket stays open).
      if (!request.stopped) {
        request.fail(cause);
        request.stop(true);
      }
    } finally {
      void iterator.return?.()?.catch(() => {});
    }
  }

  onClose(): void {
    const transport = this.transport;
    this.closed = true;
    this.req = null;
    transport.connections.delete(this);
    clearTimeout(this.authTimer);
    clearTimeout(this.expiryTimer);
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

export function attachWebSocket<TContext>(server: Server, opts: WsHandlerOptions<TContext>): WsTransport {
  const transport = new Transport(opts);
  const { connections, userConnections, subscriptionsByPath } = transport;
  const path = opts.path ?? '/trpc';
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.limits.maxPayloadBytes,
    // NOTE: must stay off: fan-out frames are pre-built uncompressed frames (see LiveSubscription.write).
    perMessageDeflate: false,
    clientTracking: true,
  });

  const onConnection = (socket: WebSocket, req: IncomingMessage, url: URL) => {
    // NOTE: not randomUUID(): Node builds it by concatenation, and the rope of ~15 string pieces
    // stays alive with the connection (≈0.5 KB per socket); a hex string is one flat allocation.
    const conn = new Connection<TContext>(transport, randomBytes(16).toString('hex'), socket, req);
    connections.add(conn);
    socket.on('message', (data: Buffer, isBinary: boolean) => conn.onMessage(data, isBinary));
    socket.on('error', (cause) => {
      opts.onError?.(getTRPCErrorFromUnknown(cause), { connectionId: conn.id });
    });
    socket.once('close', () => conn.onClose());
    conn.open(url);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
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
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req, url));
  });

  // NOTE: one interval for every socket's keep-alive instead of two timers per socket.
  const keepAlive = setInterval(
    () => transport.keepAlive(),
    Math.max(50, Math.min(opts.limits.pingMs, opts.limits.pongWaitMs) / 4),
  );
  keepAlive.unref();

  return {
    wss,
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
      const notice = JSON.stringify({ id: null, method: 'reconnect' });
      for (const conn of connections) if (conn.socket.readyState === OPEN) conn.socket.send(notice);
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
      for (const conn of connections) conn.socket.close(CloseCode.goingAway, 'Server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      for (const conn of connections) conn.socket.terminate();
    },
  };
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

function parseConnectionParams(msg: unknown): Record<string, string> | null {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
    throw new Error('message is not an object');
  const { method, data } = msg as { method?: unknown; data?: unknown };
  if (method !== 'connectionParams') throw new Error('expected method "connectionParams"');
  if (data === null || data === undefined) return null;
  if (typeof data !== 'object' || Array.isArray(data))
    throw new Error('connectionParams data is not an object');
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string') throw new Error(`connectionParams "${key}" is not a string`);
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
