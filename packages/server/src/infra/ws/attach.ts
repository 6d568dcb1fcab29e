/** Where sockets come from: an HTTP server's upgrades, or a `WebSocketServer` (the stock-style drop-in). */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type AnyTRPCRouter, TRPCError } from '@trpc/server';
import { type WebSocket, WebSocketServer } from 'ws';
import { Connection } from './connection.js';
import {
  DEFAULT_MAX_UNAUTHENTICATED_PER_IP,
  DEFAULT_WS_LIMITS,
  type PulseWSSHandlerOptions,
  type WsHandlerOptions,
  type WsLimits,
  type WsTransport,
} from './options.js';
import { CloseCode, TRY_AGAIN_LATER_RETRY_MS } from './protocol.js';
import { guard, OPEN, peerAddress, Transport } from './transport.js';

/** Serves one accepted WebSocket: wires its listeners so that no exception escapes them. */
function serveSocket<TContext>(
  transport: Transport<TContext>,
  socket: WebSocket,
  req: IncomingMessage,
  url: URL,
  handshakeDone: (() => void) | null = null,
) {
  // NOTE: not randomUUID(): Node builds it by concatenation, and the rope of ~15 string pieces
  // stays alive with the connection (≈0.5 KB per socket); a hex string is one flat allocation.
  const conn = new Connection<TContext>(transport, randomBytes(16).toString('hex'), socket, req);
  conn.handshakeDone = handshakeDone;
  transport.connections.add(conn);
  listen(conn, socket);
  guard(conn, () => conn.open(url));
}

/**
 * The socket's listeners; no exception escapes them (a failure closes that one socket, see `guard`).
 * NOTE: a function of its own, so that the listeners' closure context holds `conn` only: closures
 * created beside them (e.g. one passing `url`) would keep the upgrade URL alive with every socket.
 */
function listen<TContext>(conn: Connection<TContext>, socket: WebSocket): void {
  socket.on('message', (data: Buffer, isBinary: boolean) =>
    guard(conn, () => conn.onMessage(data, isBinary)),
  );
  socket.on('error', (cause) => {
    try {
      conn.transport.opts.onError?.(socketError(cause), { connectionId: conn.id });
    } catch {
      // a failing log hook must not escape
    }
  });
  socket.once('close', () => guard(conn, () => conn.onClose()));
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
 * A pending handshake's slot: freed by `release` when its socket closes before it is served (a
 * handshake ws aborts never reaches its callback); once served, the connection frees it (when its
 * context settles or it closes) and this listener goes.
 * NOTE: its own function, so the listener closes over this scope only: a closure in the upgrade
 * handler kept the upgrade request (headers, URL, readable state: ≈1 KB per socket) reachable for
 * the socket's whole life (test: ws.limits "does not keep its upgrade request reachable").
 */
function handshakeSlot(socket: Duplex, release: () => void): { serve(): boolean } {
  let served = false;
  const closed = () => {
    if (!served) release();
    served = true;
  };
  socket.once('close', closed);
  return {
    serve() {
      if (served) return false;
      served = true;
      // The connection's own close listener takes over (and frees the slot once its handshake ends).
      socket.removeListener('close', closed);
      return true;
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
  const maxPending = opts.limits.maxPendingHandshakes ?? Number.POSITIVE_INFINITY;
  let pending = 0;
  const handshakeDone = () => {
    pending--;
  };
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
      const ip = peerAddress(req.socket);
      if ((unauthenticatedByIp.get(ip) ?? 0) >= maxUnauthenticated) {
        rejectUpgrade(socket, 429, 'Too Many Requests');
        return;
      }
      if (pending >= maxPending) {
        // NOTE: load shedding is refused before the handshake (HTTP 503 + Retry-After), not accepted
        // and closed with 1013: tRPC's wsLink sends a new subscription one macrotask after its socket
        // opens, and if the socket has closed by then the subscription fails for good ("Active
        // connection is not open"). A refused upgrade is an open error, which wsLink retries with the
        // client's backoff, keeping its requests.
        rejectUpgrade(socket, 503, 'Service Unavailable', {
          'Retry-After': String(TRY_AGAIN_LATER_RETRY_MS / 1000),
        });
        return;
      }
      pending++;
      const slot = handshakeSlot(socket, handshakeDone);
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (!slot.serve()) return ws.terminate();
        try {
          serveSocket(transport, ws, req, url, handshakeDone);
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
      const ip = peerAddress(req.socket);
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
  return new TRPCError({
    code: code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST',
    message,
  });
}

function rejectUpgrade(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
) {
  socket.on('error', () => {});
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}
