import { randomUUID } from 'node:crypto';
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
import type { HubEvent, HubSink } from './hub.js';
import { idAfter, type LiveItem, LiveStream } from './live.js';

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

interface Subscription {
  path: string;
  stop(sendStopped: boolean): void;
}

class Connection<TContext> {
  readonly subs = new Map<RequestId, Subscription>();
  ctx: TContext | null = null;
  ctxPromise: Promise<TContext | null> | null = null;
  lastSeen = Date.now();
  pingSentAt = 0;
  userId: string | null = null;
  expiryTimer: NodeJS.Timeout | undefined;
  authTimer: NodeJS.Timeout | undefined;
  closed = false;
  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly req: IncomingMessage,
  ) {}
}

export function attachWebSocket<TContext>(server: Server, opts: WsHandlerOptions<TContext>): WsTransport {
  const { router, limits } = opts;
  const config = router._def._config;
  const path = opts.path ?? '/trpc';
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: true,
  });
  const connections = new Set<Connection<TContext>>();
  const userConnections = new Map<string, number>();
  const subscriptionsByPath = new Map<string, number>();
  let shuttingDown = false;

  // Deliveries are reported once per event and transport (after the synchronous fan-out loop),
  // not once per socket: a metrics hook must not run 10,000 times per broadcast.
  let deliveredEvent: HubEvent | null = null;
  let deliveredCount = 0;
  const flushDelivered = () => {
    const event = deliveredEvent;
    const count = deliveredCount;
    deliveredEvent = null;
    deliveredCount = 0;
    if (event && count > 0) opts.onDelivered?.(count, event);
  };
  const countDelivery = opts.onDelivered
    ? (event: HubEvent) => {
        if (event !== deliveredEvent) {
          if (deliveredEvent) flushDelivered();
          else queueMicrotask(flushDelivered);
          deliveredEvent = event;
        }
        deliveredCount += 1;
      }
    : undefined;

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
    if (shuttingDown) {
      rejectUpgrade(socket, 503, 'Shutting down');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req, url));
  });

  // NOTE: one interval for every socket's keep-alive instead of two timers per socket.
  const keepAlive = setInterval(
    () => {
      const now = Date.now();
      for (const conn of connections) {
        if (conn.pingSentAt) {
          if (now - conn.pingSentAt >= limits.pongWaitMs) conn.socket.terminate();
        } else if (now - conn.lastSeen >= limits.pingMs) {
          conn.pingSentAt = now;
          if (conn.socket.readyState === OPEN) conn.socket.send('PING');
        }
      }
    },
    Math.max(50, Math.min(limits.pingMs, limits.pongWaitMs) / 4),
  );
  keepAlive.unref();

  function errorMessage(
    id: RequestId | null,
    cause: unknown,
    extra: { type?: TRPCProcedureType | 'unknown'; path?: string; input?: unknown; ctx?: TContext | null },
    jsonrpc?: '2.0',
  ): string {
    const error = getTRPCErrorFromUnknown(cause);
    return JSON.stringify({
      id,
      jsonrpc,
      error: getErrorShape({
        config,
        error,
        type: extra.type ?? 'unknown',
        path: extra.path,
        input: extra.input,
        ctx: extra.ctx ?? undefined,
      }),
    });
  }

  function onConnection(socket: WebSocket, req: IncomingMessage, url: URL) {
    const conn = new Connection<TContext>(randomUUID(), socket, req);
    const raw = (socket as unknown as { _socket: Duplex })._socket;
    connections.add(conn);

    const send = (data: string | Buffer) => {
      if (socket.readyState === OPEN) socket.send(data, TEXT);
    };
    const fail = (
      id: RequestId | null,
      cause: unknown,
      extra: Parameters<typeof errorMessage>[2] = {},
      jsonrpc?: '2.0',
    ) => {
      const error = getTRPCErrorFromUnknown(cause);
      opts.onError?.(error, { path: extra.path, connectionId: conn.id });
      send(errorMessage(id, error, { ...extra, ctx: conn.ctx }, jsonrpc));
    };
    const closeWith = (code: number, reason: string) => {
      if (socket.readyState === OPEN) socket.close(code, reason.slice(0, 120));
      else socket.terminate();
    };

    const startContext = (params: Record<string, string> | null) => {
      clearTimeout(conn.authTimer);
      conn.ctxPromise = (async () => {
        try {
          const ctx = await opts.createContext({ connectionId: conn.id, req, connectionParams: params });
          // NOTE: the socket may have closed while the token was checked: count nothing for it.
          if (conn.closed) return null;
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
            conn.userId = who.userId;
            const remaining = who.expiresAt - Date.now();
            // NOTE: the socket's rights end with the token; wsLink reconnects and re-reads connectionParams.
            conn.expiryTimer = setTimeout(
              () => closeWith(CloseCode.unauthorized, 'Token expired'),
              Math.min(Math.max(remaining, 0), 2 ** 31 - 1),
            );
            conn.expiryTimer.unref();
          }
          if (conn.closed) return null;
          conn.ctx = ctx;
          return ctx;
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause);
          fail(null, error);
          setImmediate(() =>
            closeWith(
              error.code === 'TOO_MANY_REQUESTS' ? CloseCode.tooManyConnections : CloseCode.unauthorized,
              error.message,
            ),
          );
          return null;
        }
      })();
    };

    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (url.searchParams.get('connectionParams') !== '1') {
      startContext(bearer ? { token: bearer } : null);
    } else {
      conn.authTimer = setTimeout(() => {
        if (!conn.ctxPromise) {
          fail(
            null,
            new TRPCErrorClass({ code: 'UNAUTHORIZED', message: 'No connection params received in time' }),
          );
          closeWith(CloseCode.authTimeout, 'Authentication timeout');
        }
      }, limits.authTimeoutMs);
      conn.authTimer.unref();
    }

    function handleRequest(msg: TRPCClientOutgoingMessage, batchIndex: number) {
      const { id, jsonrpc } = msg;
      if (id === null || id === undefined) {
        fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', message: '`id` is required' }), {}, jsonrpc);
        return;
      }
      if (msg.method === 'subscription.stop') {
        conn.subs.get(id)?.stop(true);
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
      const errorExtra = { type, path: procPath, input };

      if (type === 'subscription') {
        if (conn.subs.has(id)) {
          fail(
            id,
            new TRPCErrorClass({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }),
            errorExtra,
            jsonrpc,
          );
          return;
        }
        if (conn.subs.size >= limits.maxSubscriptions) {
          fail(
            id,
            new TRPCErrorClass({
              code: 'TOO_MANY_REQUESTS',
              message: `Subscription limit (${limits.maxSubscriptions}) reached on this connection`,
            }),
            errorExtra,
            jsonrpc,
          );
          return;
        }
      }

      const abort = new AbortController();
      // Reserve the id at once so a duplicate in the same frame is refused.
      let detach: ((sendStopped: boolean) => void) | null = null;
      let stopped = false;
      const sub: Subscription = {
        path: procPath,
        stop(sendStopped) {
          if (stopped) return;
          stopped = true;
          abort.abort();
          detach?.(false);
          if (conn.subs.get(id) === sub) {
            conn.subs.delete(id);
            decrementPath(procPath);
          }
          if (sendStopped) send(JSON.stringify({ id, jsonrpc, result: { type: 'stopped' } }));
        },
      };
      if (type === 'subscription') {
        conn.subs.set(id, sub);
        subscriptionsByPath.set(procPath, (subscriptionsByPath.get(procPath) ?? 0) + 1);
      }

      void (async () => {
        const ctx = await (conn.ctxPromise ?? Promise.resolve(null));
        if (!ctx) {
          sub.stop(false);
          return;
        }
        let result: unknown;
        try {
          result = await callTRPCProcedure({
            router,
            path: procPath,
            getRawInput: async () => input,
            ctx,
            type,
            signal: abort.signal,
            batchIndex,
          });
        } catch (cause) {
          sub.stop(false);
          fail(id, cause, errorExtra, jsonrpc);
          return;
        }
        if (type !== 'subscription') {
          if (isAsyncIterableLike(result)) {
            fail(
              id,
              new TRPCErrorClass({
                code: 'UNSUPPORTED_MEDIA_TYPE',
                message: `Cannot return an async iterable from a ${type} procedure with WebSockets`,
              }),
              errorExtra,
              jsonrpc,
            );
            return;
          }
          send(JSON.stringify({ id, jsonrpc, result: { type: 'data', data: result } }));
          return;
        }
        if (stopped || conn.closed) {
          sub.stop(false);
          return;
        }
        if (result instanceof LiveStream) {
          detach = runLive(result, id, jsonrpc, sub, errorExtra);
          return;
        }
        if (!isAsyncIterableLike(result)) {
          sub.stop(false);
          fail(
            id,
            new TRPCErrorClass({
              code: 'INTERNAL_SERVER_ERROR',
              message: `Subscription ${procPath} did not return an AsyncIterable`,
            }),
            errorExtra,
            jsonrpc,
          );
          return;
        }
        send(JSON.stringify({ id, jsonrpc, result: { type: 'started' } }));
        detach = runIterable(result, id, jsonrpc, sub, abort.signal, errorExtra);
      })();
    }

    /** Fast path: the socket is a hub sink; frames are built once per event and subscription id. */
    function runLive(
      stream: LiveStream<unknown>,
      id: RequestId,
      jsonrpc: '2.0' | undefined,
      sub: Subscription,
      errorExtra: Parameters<typeof errorMessage>[2],
    ): (sendStopped: boolean) => void {
      const { spec, hub } = stream;
      const prefix = `{"id":${JSON.stringify(id)},${jsonrpc ? '"jsonrpc":"2.0",' : ''}`;
      const prefixBytes = Buffer.from(prefix);
      let state = 'initial' as 'initial' | 'live' | 'stopped';
      let buffered: HubEvent[] = [];
      let lastId = spec.lastEventId;
      let pending: Map<string, HubEvent> | null = null;
      let flushTimer: NodeJS.Timeout | undefined;
      let resyncPending = false;

      const write = (event: HubEvent) => {
        // NOTE: once closing, the 4008 close frame waits behind the buffer; terminating on the next
        // event would hide the reason from a client that is merely slow.
        if (socket.readyState !== OPEN) return;
        const amount = socket.bufferedAmount;
        if (amount > limits.slowCloseBytes) {
          opts.onDropped?.('slow');
          closeWith(CloseCode.slowConsumer, 'Slow consumer');
          return;
        }
        if (!spec.durable && amount > limits.slowDropBytes) {
          const key = spec.coalesceKey?.(event.data);
          if (key === undefined) {
            opts.onDropped?.('slow');
            return;
          }
          pending ??= new Map();
          if (pending.has(key)) opts.onDropped?.('coalesced');
          pending.delete(key);
          pending.set(key, event);
          flushTimer ??= setTimeout(flushPending, 50);
          return;
        }
        if (socket.readyState !== OPEN) return;
        // NOTE: a complete WebSocket frame, written straight to the TCP socket: valid because the
        // server never negotiates permessage-deflate, and it skips ws's per-send header and writev.
        raw.write(frameFor(event, prefix, prefixBytes));
        countDelivery?.(event);
      };
      const flushPending = () => {
        flushTimer = undefined;
        if (state === 'stopped' || !pending) return;
        if (socket.bufferedAmount > limits.slowDropBytes) {
          flushTimer = setTimeout(flushPending, 50);
          return;
        }
        const events = [...pending.values()];
        pending = null;
        for (const event of events) write(event);
      };
      const accept = (event: HubEvent): boolean => {
        if (spec.filter && !spec.filter(event.data)) return false;
        if (spec.durable && event.id !== undefined) {
          if (!idAfter(event.id, lastId)) return false;
          lastId = event.id;
        }
        return true;
      };
      const sink: HubSink = {
        deliver(event) {
          if (state === 'live') {
            if (accept(event)) write(event);
          } else if (state === 'initial') {
            if (buffered.length >= 10_000) {
              closeWith(CloseCode.slowConsumer, 'Too many events during replay');
              return;
            }
            buffered.push(event);
          }
        },
        resync() {
          // The bus may have lost events (or a durable topic had a gap): replay (durable) or resend a
          // snapshot (ephemeral). Live events wait in the buffer meanwhile, so none overtakes the replay.
          if (state === 'stopped') return;
          resyncPending = true;
          if (state === 'initial') return; // the running replay repeats itself before going live
          state = 'initial';
          void catchUp().catch(() => {});
        },
      };
      /** Replays while a resync is pending, then delivers what was buffered and goes live. */
      const catchUp = async () => {
        try {
          while (resyncPending) {
            resyncPending = false;
            const items = await spec.initial(spec.durable ? lastId : undefined);
            if (state !== 'initial') return;
            sendItems(items);
          }
        } catch {
          // the next resync (or the client's resume) recovers
        }
        if (state !== 'initial') return;
        const queued = buffered;
        buffered = [];
        state = 'live';
        for (const event of queued) if (accept(event)) write(event);
      };
      const sendItems = (items: Array<LiveItem<unknown>>) => {
        for (const item of items) {
          if (spec.durable && item.id !== undefined) {
            if (!idAfter(item.id, lastId)) continue;
            lastId = item.id;
          }
          send(itemFrame(prefix, item));
        }
      };

      const attachment = hub.attach(spec.topic, sink);
      send(JSON.stringify({ id, jsonrpc, result: { type: 'started' } }));
      const isStopped = () => state === 'stopped';
      void (async () => {
        try {
          await attachment.ready;
          if (isStopped()) return;
          const items = await spec.initial(spec.lastEventId);
          if (isStopped()) return;
          sendItems(items);
          await catchUp();
        } catch (cause) {
          if (isStopped()) return;
          state = 'stopped';
          attachment.detach();
          sub.stop(false);
          fail(id, cause, errorExtra, jsonrpc);
        }
      })();
      return () => {
        state = 'stopped';
        buffered = [];
        pending = null;
        clearTimeout(flushTimer);
        attachment.detach();
      };
    }

    function runIterable(
      iterable: AsyncIterable<unknown>,
      id: RequestId,
      jsonrpc: '2.0' | undefined,
      sub: Subscription,
      signal: AbortSignal,
      errorExtra: Parameters<typeof errorMessage>[2],
    ): (sendStopped: boolean) => void {
      const iterator = iterable[Symbol.asyncIterator]();
      const aborted = new Promise<'abort'>((resolve) =>
        signal.addEventListener('abort', () => resolve('abort')),
      );
      void (async () => {
        try {
          while (true) {
            const next = await Promise.race([iterator.next(), aborted]);
            if (next === 'abort') break;
            if (next.done) {
              sub.stop(true);
              break;
            }
            const value = next.value;
            const result = isTrackedEnvelope(value)
              ? { type: 'data', data: { id: value[0], data: value[1] }, id: value[0] }
              : { type: 'data', data: value };
            send(JSON.stringify({ id, jsonrpc, result }));
          }
        } catch (cause) {
          sub.stop(false);
          fail(id, cause, errorExtra, jsonrpc);
        } finally {
          void iterator.return?.()?.catch(() => {});
        }
      })();
      return () => {};
    }

    socket.on('message', (raw: Buffer, isBinary: boolean) => {
      conn.lastSeen = Date.now();
      conn.pingSentAt = 0;
      if (isBinary) {
        fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Binary frames are not supported' }));
        return;
      }
      const text = raw.toString('utf8');
      if (text === 'PONG') return;
      if (text === 'PING') {
        send('PONG');
        return;
      }
      if (!conn.ctxPromise) {
        let params: Record<string, string> | null;
        try {
          params = parseConnectionParams(JSON.parse(text));
        } catch (cause) {
          fail(
            null,
            new TRPCErrorClass({
              code: 'PARSE_ERROR',
              message: `Malformed connectionParams message: ${(cause as Error).message}`,
              cause,
            }),
          );
          setImmediate(() => closeWith(CloseCode.unauthorized, 'Malformed connectionParams'));
          conn.ctxPromise = Promise.resolve(null);
          return;
        }
        startContext(params);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (cause) {
        fail(null, new TRPCErrorClass({ code: 'PARSE_ERROR', message: 'Invalid JSON', cause }));
        return;
      }
      const items = Array.isArray(parsed) ? parsed : [parsed];
      if (items.length === 0 || items.length > limits.maxBatch) {
        fail(
          null,
          new TRPCErrorClass({
            code: items.length === 0 ? 'BAD_REQUEST' : 'PAYLOAD_TOO_LARGE',
            message:
              items.length === 0
                ? 'Empty batch'
                : `Batch of ${items.length} requests exceeds the limit of ${limits.maxBatch}`,
          }),
        );
        return;
      }
      items.forEach((item, index) => {
        let msg: TRPCClientOutgoingMessage;
        try {
          msg = parseTRPCMessage(item, config.transformer);
        } catch (cause) {
          const rawId = (item as { id?: unknown } | null)?.id;
          const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
          fail(
            id,
            new TRPCErrorClass({
              code: 'PARSE_ERROR',
              message: `Invalid request: ${(cause as Error).message}`,
              cause,
            }),
          );
          return;
        }
        handleRequest(msg, index);
      });
    });

    socket.on('error', (cause) => {
      opts.onError?.(getTRPCErrorFromUnknown(cause), { connectionId: conn.id });
    });

    socket.once('close', () => {
      conn.closed = true;
      connections.delete(conn);
      clearTimeout(conn.authTimer);
      clearTimeout(conn.expiryTimer);
      for (const sub of [...conn.subs.values()]) sub.stop(false);
      conn.subs.clear();
      if (conn.userId) {
        const left = (userConnections.get(conn.userId) ?? 1) - 1;
        if (left <= 0) userConnections.delete(conn.userId);
        else userConnections.set(conn.userId, left);
      }
      // NOTE: after an in-flight createContext settles, so whatever it registered is released too.
      void (conn.ctxPromise ?? Promise.resolve(null)).then(() => opts.onClose?.(conn.id, conn.ctx));
    });
  }

  function decrementPath(procPath: string) {
    const n = (subscriptionsByPath.get(procPath) ?? 1) - 1;
    if (n <= 0) subscriptionsByPath.delete(procPath);
    else subscriptionsByPath.set(procPath, n);
  }

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
      shuttingDown = true;
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
 * The complete WebSocket frame of `{"id":…,"result":{"type":"data",…}}` for one event and one
 * subscription-id prefix. The event is serialised once (`tail`); frames for common prefixes (wsLink
 * numbers subscriptions per client, so many clients share ids) are built once and shared, others
 * cost one small buffer and two copies.
 */
function frameFor(event: HubEvent, prefix: string, prefixBytes: Buffer): Buffer {
  const cache = event.cache;
  const cached = cache.get(prefix) as Buffer | undefined;
  if (cached) return cached;
  let tail = cache.get(TAIL_KEY) as Buffer | undefined;
  if (tail === undefined) {
    const json = event.json();
    if (event.id === undefined) tail = Buffer.from(`"result":{"type":"data","data":${json}}}`);
    else {
      const idJson = JSON.stringify(event.id);
      tail = Buffer.from(`"result":{"type":"data","data":{"id":${idJson},"data":${json}},"id":${idJson}}}`);
    }
    cache.set(TAIL_KEY, tail);
  }
  const frame = textFrame(prefixBytes, tail);
  if (cache.size < FRAME_CACHE_LIMIT) cache.set(prefix, frame);
  return frame;
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
