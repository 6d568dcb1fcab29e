/** The transport's options, limits and handle (types and defaults only). */
import type { ConnectionCounter } from '../connection-counter.js';
import type { IncomingMessage } from 'node:http';
import type { AnyTRPCRouter, TRPCError, TRPCProcedureType } from '@trpc/server';
import type { Encoder } from '@trpc/server/adapters/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { HubEvent } from '../hub.js';

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
  /**
   * Sockets this node may hold between upgrade and a settled context (token checked); further
   * upgrades are refused before the handshake with HTTP 503 and `Retry-After: 1` (load shedding in
   * a reconnect storm; clients retry with their jittered backoff and keep their requests). Default:
   * no limit.
   */
  maxPendingHandshakes?: number;
}

/** Default of `WsLimits.maxUnauthenticatedPerIp`. */
export const DEFAULT_MAX_UNAUTHENTICATED_PER_IP = 100;
/** Default of `WsLimits.maxInFlight` (one full default batch). */
export const DEFAULT_MAX_IN_FLIGHT = 128;

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

export type WriteGathering = 'immediate' | 'microtask' | 'off';

export interface WsHandlerOptions<TContext> {
  router: AnyTRPCRouter;
  path?: string;
  limits: WsLimits;
  allowedOrigins: string[];
  /** Resolves the connection's context; a rejection refuses the socket (every waiting request gets it). */
  createContext?(info: WsConnectionInfo): Promise<TContext> | TContext;
  /** The user a context belongs to (per-user connection limit) and when its rights end. */
  identify?(ctx: TContext): { userId: string; expiresAt: number } | null;
  /**
   * Counts the per-user cap (`limits.maxConnectionsPerUser`) somewhere other than this transport,
   * e.g. across every node in Redis (`createRedisConnectionCounter`). Default: this transport's sockets.
   */
  connectionCounter?: ConnectionCounter;
  /** Wire encoding other than JSON (as the stock adapter's `experimental_encoder`); turns off the fast path. */
  experimental_encoder?: Encoder;
  /** Attach `LiveStream` subscriptions to the hub directly (default true; needs JSON and no transformer). */
  fastPath?: boolean;
  /**
   * Fast-path writes to one socket in one turn of the event loop are corked and flushed together
   * (one `writev`): `'immediate'` flushes in `setImmediate`, `'microtask'` in a microtask, `'off'`
   * (default, until measured) writes each frame at once. Default from `PULSE_WS_WRITE_GATHER` if set.
   */
  writeGathering?: WriteGathering;
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
