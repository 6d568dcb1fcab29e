// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AnyTRPCRouter, TRPCError, type TRPCRouterCaller } from '@trpc/server';
import type { Principal } from './auth/auth.schema.js';
import { createTokenVerifier, type TokenVerifierOptions } from './auth/token.js';
import type { AnyChannel, ChannelPublishResult } from './channels/channel.js';
import { channelRestEndpoints } from './channels/channels.rest.js';
import { notificationRestEndpoints } from './notifications/notifications.rest.js';
import { presenceRestEndpoints } from './presence/presence.rest.js';
import { channelsInRouter } from './channels/channels.router.js';
import { type ChannelPublishInput, ChannelService } from './channels/channels.service.js';
import { channelMigrations } from './channels/channels.tables.js';
import { assertCanListen, type PulseConfig, type PulseConfigInput, resolveConfig } from './config.js';
import type { Bus } from './infra/bus/bus.js';
import { demoTokensRoute } from './demo/demo-routes.js';
import { createMemoryBus } from './infra/bus/memory-bus.js';
import { createRedisBus } from './infra/bus/redis-bus.js';
import { createRedisClusterBus } from './infra/bus/redis-cluster-bus.js';
import { createRedisClient, type RedisClient, type RedisTarget } from './infra/redis-client.js';
import { createHttpServer, type HttpRoute, type HttpServerOptions, sendJson } from './infra/http.js';
import { Hub } from './infra/hub.js';
import { createLogger, type Logger } from './infra/log.js';
import { authFailureReason, createMetrics } from './infra/metrics.js';
import { createOpenApiDocument } from './infra/openapi.js';
import { createRateLimiter } from './infra/rate-limit.js';
import { createRestRoute } from './infra/rest.js';
import { statsRestEndpoints } from './stats/stats.rest.js';
import { StatsService } from './stats/stats.service.js';
import { statsMigrations } from './stats/stats.tables.js';
import { createStore, type Store } from './infra/store/db.js';
import { streamMigrations } from './streams/streams.tables.js';
import { type DashboardHistoryOptions, DashboardService } from './dashboard/dashboard.service.js';
import { dashboardMigrations } from './dashboard/dashboard.tables.js';
import { createInboxService } from './inbox/inbox.wiring.js';
import { inboxMigrations } from './inbox/inbox.tables.js';
import { attachWebSocket, type WsTransport, type WsTransportStats } from './infra/ws.js';
import type { PresenceBackend } from './presence/presence.backend.js';
import { createMemoryPresenceBackend } from './presence/presence.memory.js';
import { type ConnectionCounter, createRedisConnectionCounter } from './infra/connection-counter.js';
import {
  createRedisPresenceBackend,
  presenceHeartbeatKey,
  presenceKeyBase,
} from './presence/presence.redis.js';
import { PresenceService } from './presence/presence.service.js';
import { NotificationService } from './notifications/notifications.service.js';
import { notificationMigrations } from './notifications/notifications.tables.js';
import type { NotificationWebhookOptions } from './notifications/notifications.webhook.js';
import { notificationPrioritySchema, notificationTypeSchema } from './notifications/notifications.schema.js';
import { createServicePublisher, type ServicePublisher } from './publisher.js';
import { kindsOfRouter } from './kinds.js';
import { type StreamFaults, StreamKernel } from './streams/stream-kernel.js';
import { type AppRouter, appRouter } from './router.js';
import type { PulseServices } from './services.js';
import { createOpsServer, opsRoutes } from './infra/ops.js';
import type { PulseContext } from './context.js';
import { createCallerFactory } from './trpc.js';

export interface PulseServerOptions<TRouter extends AnyTRPCRouter = AppRouter> {
  /**
   * The router to serve (default: Pulse's `appRouter`). Compose the app's own with Pulse's:
   * `router({ ...pulseRouters, posts: postsRouter, channels: channelRouter([comments]) })`.
   */
  router?: TRouter;
  /**
   * The app's channels (`defineChannel`), registered at construction. Channels the router serves
   * through `channelRouter` are registered without being listed here.
   */
  channels?: readonly AnyChannel[];
  /** Token verification beyond the config: `claims` maps the identity provider's tokens onto Pulse's caller. */
  auth?: Pick<TokenVerifierOptions, 'claims'>;
  /** Overrides on top of defaults (use `loadConfig()` for the environment). */
  config?: PulseConfigInput | PulseConfig;
  /** Bring your own bus / store / presence backend (tests, embedding); defaults follow the config. */
  bus?: Bus;
  store?: Store;
  presenceBackend?: PresenceBackend;
  /** SQLite file name in the data dir (default `pulse.db`); `:memory:` for a throwaway store. */
  sqliteFile?: string;
  /** Structured logger (default: pino JSON on stdout at `config.logLevel`). */
  logger?: Logger;
  /** Extra HTTP routes tried after Pulse's own (e.g. the demo's static app files). */
  routes?: HttpRoute[];
  /** The outgoing webhook for notifications left unseen (docs/notifications.md); off when absent. */
  notificationWebhook?: NotificationWebhookOptions;
  /** Dashboard history retention and rollup interval (docs/dashboard.md); defaults when absent. */
  dashboardHistory?: DashboardHistoryOptions;
}

/** A running Pulse node serving `TRouter` (Pulse's `appRouter` unless `startPulseServer({ router })`). */
export interface PulseServer<TRouter extends AnyTRPCRouter = AppRouter> extends PulseApi<TRouter> {
  /** `http://host:port` */
  readonly url: string;
  /** `ws://host:port/trpc` */
  readonly wsUrl: string;
  readonly port: number;
  /** The ops listener's port (`config.ops.port`), or null when ops endpoints share the public port. */
  readonly opsPort: number | null;
  stats(): {
    transport: WsTransportStats;
    hub: ReturnType<Hub['stats']>;
    presence: ReturnType<PresenceService['stats']>;
    operations: ReturnType<StatsService['stats']>;
  };
  /** Graceful stop: tell clients to reconnect, drain, close the store and bus. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/** The principal used by `server.caller` and in-process publishers. */
export function servicePrincipal(name = 'pulse-internal'): Principal {
  return { userId: name, name, workspaces: {}, service: true, expiresAt: Number.POSITIVE_INFINITY };
}

/** Options of `createPulseServices`. */
export interface PulseServicesOptions
  extends Pick<
    PulseServerOptions,
    | 'config'
    | 'bus'
    | 'store'
    | 'presenceBackend'
    | 'sqliteFile'
    | 'logger'
    | 'notificationWebhook'
    | 'dashboardHistory'
    | 'channels'
  > {
  /** Connection counts of the transport, when one runs (stats and metrics read them). */
  transportStats?: () => WsTransportStats;
  /** The router's notification kinds (an app's `notificationKinds`): webhook rules may name them. Default: the seed kinds. */
  notificationKinds?: readonly string[];
  /** The durable-stream relay: poll interval and lease (defaults 250 / 1,000 ms); `faults` in tests only. */
  streams?: { relayPollMs?: number; relayLeaseMs?: number; faults?: StreamFaults };
}

/**
 * One node's store (migrated), bus, hub and domain services, without any listener: the part of
 * `startPulseServer` that `createPublisher` reuses in processes without a WebSocket server.
 * `close()` stops the services and closes what it created (not a given bus, store or backend).
 */
export async function createPulseServices(
  opts: PulseServicesOptions = {},
): Promise<{ services: PulseServices; close(): Promise<void> }> {
  const config = resolveConfig(opts.config as PulseConfigInput);
  // NOTE: checked before anything is opened, so a misconfigured node leaks no store or socket.
  const webhook = opts.notificationWebhook ?? webhookFromConfig(config, opts.notificationKinds);
  // NOTE: `PULSE_REDIS_CLUSTER` wins over `REDIS_URL`: every Redis user below opens the same target.
  const redis: RedisTarget | undefined = config.redisCluster?.length
    ? { cluster: config.redisCluster }
    : config.redisUrl
      ? { url: config.redisUrl }
      : undefined;
  const onCluster = redis?.cluster !== undefined;
  const bus =
    opts.bus ??
    (redis?.cluster
      ? createRedisClusterBus({ nodes: redis.cluster, prefix: config.redisPrefix })
      : redis?.url
        ? createRedisBus({ url: redis.url, prefix: config.redisPrefix })
        : createMemoryBus());
  const logger = opts.logger ?? createLogger({ level: config.logLevel, nodeId: config.nodeId });
  const transportStats = (): WsTransportStats =>
    opts.transportStats?.() ?? { connections: 0, subscriptions: 0, subscriptionsByPath: {}, users: 0 };
  const metrics = createMetrics({
    nodeId: config.nodeId,
    transport: () => transportStats(),
    hub: () => hub.stats(),
  });
  const hub = new Hub(metrics.instrumentBus(bus));
  const store =
    opts.store ??
    createStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteFile: opts.sqliteFile });
  await store.migrate({
    ...statsMigrations,
    ...streamMigrations,
    ...notificationMigrations,
    ...dashboardMigrations,
    ...inboxMigrations,
    ...channelMigrations,
  });
  // NOTE: with Redis, presence is shared by every node (entries tagged with this node's id).
  const presenceBackend =
    opts.presenceBackend ??
    (redis
      ? createRedisPresenceBackend({
          ...redis,
          prefix: config.redisPrefix,
          nodeId: config.nodeId,
          ttlMs: config.presence.ttlMs,
        })
      : createMemoryPresenceBackend());
  // NOTE: with Redis presence the per-user connection cap counts across nodes, read against the
  // presence heartbeats (a dead node's sockets stop counting with its heartbeat). One node: the
  // transport's own count (nothing more held per socket).
  const connectionCounter: ConnectionCounter | undefined =
    redis && !opts.presenceBackend
      ? createRedisConnectionCounter({
          ...redis,
          prefix: config.redisPrefix,
          // On a cluster the per-user keys carry the heartbeats' hash tag (the script reads both).
          keyBase: onCluster ? `${presenceKeyBase(config.redisPrefix, true)}conns:` : undefined,
          nodeId: config.nodeId,
          heartbeatKey: (node) => presenceHeartbeatKey(config.redisPrefix, node, onCluster),
        })
      : undefined;
  const presence = new PresenceService({
    hub,
    backend: presenceBackend,
    nodeId: config.nodeId,
    graceMs: config.presence.graceMs,
    ttlMs: config.presence.ttlMs,
    typingTtlMs: config.presence.typingTtlMs,
  });
  const dashboard = new DashboardService({
    hub,
    store,
    history: opts.dashboardHistory ?? config.dashboardHistory,
    onError: (error) => logger.warn({ err: error }, 'dashboard rollup failed'),
  });
  // NOTE: one durable-stream kernel per node: every durable domain's ids, replay and relay.
  const streams = new StreamKernel({
    store,
    hub,
    nodeId: config.nodeId,
    relayPollMs: opts.streams?.relayPollMs,
    relayLeaseMs: opts.streams?.relayLeaseMs,
    faults: opts.streams?.faults,
    onError: (error, context) => logger.warn({ err: error }, `${context}: left to the relay`),
  });
  const notifications = new NotificationService({
    hub,
    store,
    streams,
    retention: config.notifications.retention,
    onError: (error, context) =>
      logger.warn(
        { err: error },
        context.startsWith('notification webhook') ? context : `${context}: left to the relay`,
      ),
    webhook,
    nodeId: config.nodeId,
  });
  const inbox = createInboxService({ config, hub, store, streams, notifications, logger });
  const channels = new ChannelService({ store, hub, streams, channels: opts.channels });
  // NOTE: with Redis, rate limits hold cluster-wide; while Redis is down each node falls back to memory.
  // (One key per limiter call: any slot of a cluster will do.)
  const rateLimitRedis = redis
    ? createRedisClient(redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    : undefined;
  rateLimitRedis?.on('error', () => {});
  // NOTE: with no offline queue a command sent before the connection is ready fails and the node
  // falls back to its own in-memory limits; wait (bounded) so a fresh node starts cluster-wide.
  if (rateLimitRedis) await waitReady(rateLimitRedis, 2_000);
  const operations = {
    logger,
    metrics,
    rateLimiter: createRateLimiter({
      settings: config.limits,
      redis: rateLimitRedis,
      keyPrefix: `${config.redisPrefix}rl`,
      onLimited: (limit) => {
        metrics.rateLimited(limit);
        logger.debug({ limit }, 'rate limited');
      },
    }),
    stats: new StatsService({
      nodeId: config.nodeId,
      store,
      counts: () => {
        const t = transportStats();
        return {
          connections: t.connections,
          users: t.users,
          subscriptions: t.subscriptions,
          subscriptionsByPath: t.subscriptionsByPath,
          topics: hub.stats().topics,
        };
      },
      countOnline: (workspaceId) => presence.countOnline(workspaceId),
    }),
  };
  const services: PulseServices = {
    ...operations,
    config,
    bus,
    hub,
    store,
    presence,
    dashboard,
    notifications,
    inbox,
    channels,
    connectionCounter,
  };
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await presence.close();
      await inbox.close();
      await notifications.close();
      await dashboard.close();
      await streams.close();
      await connectionCounter?.close();
      if (!opts.presenceBackend) await presenceBackend.close();
      rateLimitRedis?.disconnect();
      await operations.stats.close();
      await hub.close();
      if (!opts.bus) await bus.close();
      if (!opts.store) await store.close();
    })();
    return closing;
  };
  return { services, close };
}

/** The HTTP and WebSocket parts of a node, before anything listens (`startPulseServer`, `attachPulse`). */
export interface PulseNode<TRouter extends AnyTRPCRouter> {
  services: PulseServices;
  router: TRouter;
  /** Options of Pulse's request listener (tRPC, REST, ops, openapi, the extra routes). */
  http: HttpServerOptions<PulseContext>;
  /** Attaches the WebSocket transport to a server's upgrade events (Pulse's path only: `/trpc`). */
  attachTransport(server: Server): WsTransport;
  ops(serveMetrics: boolean, loopbackOnly: boolean): HttpRoute[];
  logHttpError(error: unknown, info: { path: string | undefined; requestId?: string }): void;
  closeServices(): Promise<void>;
  /** What `server.caller`, `server.publish` and `server.channels` offer (shared by `attachPulse`). */
  api: PulseApi<TRouter>;
}

/** The server-side parts of a running node that do not depend on how it listens. */
export interface PulseApi<TRouter extends AnyTRPCRouter> {
  readonly config: PulseConfig;
  readonly services: PulseServices;
  /** Server-side caller with a service principal for every workspace. */
  readonly caller: PulseCaller<TRouter>;
  /** In-process publisher (the seed's vocabulary and `channel`): notifications, presence reads, channels. */
  readonly publish: ServicePublisher<TRouter>;
  /** The app's channels: publish from server code (trusted: `authorize` is not asked). */
  readonly channels: {
    publish<C extends AnyChannel>(channel: C, input: ChannelPublishInput<C>): Promise<ChannelPublishResult>;
  };
  /** Server-side caller acting as `principal` (checks apply as for a remote call). */
  callerFor(principal: Principal): PulseCaller<TRouter>;
}

/** The server-side caller of a router (`server.caller`). */
export type PulseCaller<TRouter extends AnyTRPCRouter> = ReturnType<
  TRPCRouterCaller<TRouter['_def']['_config']['$types'], TRouter['_def']['record']>
>;

/**
 * Builds a node's services, token verifier, request listener options and transport factory (the
 * shared part of `startPulseServer` and `attachPulse`). Channels are registered from
 * `opts.channels` and from the router's `channelRouter` procedures.
 */
export async function createPulseNode<TRouter extends AnyTRPCRouter = AppRouter>(
  opts: PulseServerOptions<TRouter>,
): Promise<PulseNode<TRouter>> {
  const router = (opts.router ?? appRouter) as TRouter;
  const served = channelsInRouter(router);
  const channels = [...new Set([...(opts.channels ?? []), ...served.map((s) => s.channel)])];
  let transportStats = (): WsTransportStats => ({
    connections: 0,
    subscriptions: 0,
    subscriptionsByPath: {},
    users: 0,
  });
  const kinds = kindsOfRouter(router);
  const { services, close: closeServices } = await createPulseServices({
    ...opts,
    channels,
    notificationKinds: kinds.notifications?.types,
    transportStats: () => transportStats(),
  });
  const { config, bus, store, presence, logger, metrics } = services;
  try {
    assertCanListen(config);
  } catch (error) {
    await closeServices();
    throw error;
  }
  const operations = { stats: services.stats };
  const verifier = createTokenVerifier(config.jwt, {
    ...opts.auth,
    // NOTE: a secret generated beside a key set signs nothing anyone else holds; demo tokens use it.
    hs256: config.demoMode || !config.secretGenerated,
  });

  async function contextFor(token: string | undefined, connectionId: string | null): Promise<PulseContext> {
    if (token === undefined) return { principal: null, authError: null, connectionId, services };
    try {
      return { principal: await verifier.verify(token), authError: null, connectionId, services };
    } catch (cause) {
      const authError =
        cause instanceof TRPCError
          ? cause
          : new TRPCError({ code: 'UNAUTHORIZED', message: 'Invalid token' });
      metrics.authFailure(connectionId ? 'ws' : 'http', authFailureReason(authError.message));
      logger.info({ connectionId, reason: authError.message }, 'token refused');
      return { principal: null, authError, connectionId, services };
    }
  }

  /**
   * Client faults (PARSE_ERROR, BAD_REQUEST, METHOD_NOT_SUPPORTED, …) at debug without a stack, so
   * nobody can flood the log on demand; only server faults at error, with the original cause.
   */
  function logHttpError(error: unknown, info: { path: string | undefined; requestId?: string }) {
    const code = error instanceof TRPCError ? error.code : 'INTERNAL_SERVER_ERROR';
    if (code === 'INTERNAL_SERVER_ERROR') {
      const cause = error instanceof TRPCError && error.cause ? error.cause : error;
      logger.error({ err: cause, code, ...info }, 'HTTP request failed');
    } else {
      logger.debug({ code, message: (error as Error).message, ...info }, 'HTTP request refused');
    }
  }

  let openapi: ReturnType<typeof createOpenApiDocument> | undefined;
  const httpContext = async (req: IncomingMessage): Promise<PulseContext> => {
    const header = req.headers.authorization;
    const token = header ? (/^Bearer (.+)$/i.exec(header)?.[1] ?? '') : undefined;
    const ctx = await contextFor(token, null);
    return { ...ctx, requestId: randomUUID() };
  };
  const ops = (serveMetrics: boolean, loopbackOnly: boolean) =>
    opsRoutes({
      nodeId: config.nodeId,
      metrics,
      ready: async () => {
        await Promise.all([store.ping(), bus.ping()]);
      },
      metricsToken: config.ops.metricsToken,
      loopbackOnly,
      serveMetrics,
      onNotReady: (error) => logger.warn({ err: error }, 'not ready'),
    });
  // NOTE: Pulse's REST paths call procedures of Pulse's own router; an app router without one of
  // them (it left a domain out) simply does not serve that path.
  const procedures = router._def.procedures as Record<string, unknown>;
  // The REST paths of ARCHITECTURE.md §6 (seed parity), each domain's from its own `<domain>.rest.ts`;
  // the OpenAPI document is generated from this list, in this order.
  const restEndpoints = [...presenceRestEndpoints, ...notificationRestEndpoints, ...statsRestEndpoints];
  const endpoints = [
    ...restEndpoints.filter((endpoint) => Object.hasOwn(procedures, endpoint.procedure)),
    ...channelRestEndpoints(served),
  ];
  const routes: HttpRoute[] = [
    // NOTE: with an ops port, /metrics lives there only; /healthz and /readyz stay on the public port
    // too (load balancers probe it), and say nothing of the backend.
    ...ops(config.ops.port === undefined, true),
    (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/openapi.json') return false;
      openapi ??= createOpenApiDocument({ router, endpoints });
      sendJson(res, 200, openapi);
      return true;
    },
    createRestRoute({
      router,
      endpoints,
      maxBodyBytes: config.limits.maxPayloadBytes,
      createContext: (req) => httpContext(req),
      requestIdOf: (ctx) => ctx.requestId,
      onError: (error, info) => logHttpError(error, { path: info.procedure, requestId: info.requestId }),
    }),
    ...(config.demoMode ? [demoTokensRoute(config)] : []),
    ...(opts.routes ?? []),
  ];

  const http: HttpServerOptions<PulseContext> = {
    router,
    routes,
    maxBodySize: config.limits.maxPayloadBytes,
    allowedOrigins: config.allowedOrigins,
    limits: config.limits,
    createContext: httpContext,
    requestIdOf: (ctx) => ctx.requestId,
    onError: logHttpError,
  };

  const attachTransport = (server: Server): WsTransport => {
    const transport = attachWebSocket<PulseContext>(server, {
      router,
      limits: config.limits,
      allowedOrigins: config.allowedOrigins,
      async createContext({ connectionParams, connectionId }) {
        const ctx = await contextFor(connectionParams?.token, connectionId);
        // NOTE: a socket without a valid token is refused outright (FIELD-NOTES: createContext must reject).
        if (!ctx.principal) {
          if (!ctx.authError) metrics.authFailure('ws', 'missing');
          throw ctx.authError ?? new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
        }
        operations.stats.connectionOpened(connectionId, ctx.principal);
        logger.debug({ connectionId, userId: ctx.principal.userId }, 'connection authenticated');
        return ctx;
      },
      connectionCounter: services.connectionCounter,
      identify: (ctx) =>
        ctx.principal ? { userId: ctx.principal.userId, expiresAt: ctx.principal.expiresAt } : null,
      onClose: (connectionId) => {
        presence.connectionClosed(connectionId);
        operations.stats.connectionClosed(connectionId);
        logger.debug({ connectionId }, 'connection closed');
      },
      onDelivered: (count, event) => metrics.delivered(count, event),
      onDropped: (reason) => metrics.dropped(reason),
      onError: (error, info) => {
        if (error.code === 'INTERNAL_SERVER_ERROR')
          logger.error({ err: error, ...info }, 'WebSocket call failed');
        else logger.debug({ code: error.code, ...info }, 'WebSocket call refused');
      },
    });
    transportStats = () => transport.stats();
    return transport;
  };

  const createCaller = createCallerFactory(router) as unknown as (ctx: PulseContext) => PulseCaller<TRouter>;
  const api: PulseApi<TRouter> = {
    config,
    services,
    caller: createCaller({ principal: servicePrincipal(), authError: null, connectionId: null, services }),
    publish: createServicePublisher<TRouter>(services, kinds),
    channels: { publish: (channel, input) => services.channels.publish('system', channel, input) },
    callerFor: (principal) => createCaller({ principal, authError: null, connectionId: null, services }),
  };
  return { services, router, http, attachTransport, ops, logHttpError, closeServices, api };
}

/** Starts a Pulse node: store migrated, bus connected, HTTP + WebSocket listening. */
export async function startPulseServer<TRouter extends AnyTRPCRouter = AppRouter>(
  opts: PulseServerOptions<TRouter> = {},
): Promise<PulseServer<TRouter>> {
  const node = await createPulseNode(opts);
  const { services, closeServices, ops, logHttpError, api } = node;
  const { config, hub, presence } = services;
  const operations = { stats: services.stats };
  const http = createHttpServer(node.http);
  const transport = node.attachTransport(http);

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ port: config.port, host: config.host, backlog: config.limits.listenBacklog }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  let opsServer: ReturnType<typeof createOpsServer> | null = null;
  let opsPort: number | null = null;
  if (config.ops.port !== undefined) {
    const server = createOpsServer(ops(true, false), (error) => logHttpError(error, { path: 'ops' }));
    opsServer = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.ops.port, config.ops.host ?? config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await transport.shutdown(0);
      http.close();
      await closeServices();
      throw error;
    }
    opsPort = (server.address() as AddressInfo).port;
  }
  const hostForUrl = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${hostForUrl}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    ...api,
    url,
    wsUrl: `ws://${hostForUrl}:${port}/trpc`,
    port,
    opsPort,
    stats: () => ({
      transport: transport.stats(),
      hub: hub.stats(),
      presence: presence.stats(),
      operations: operations.stats.stats(),
    }),
    close(closeOpts = {}) {
      closing ??= (async () => {
        await transport.shutdown(closeOpts.graceMs ?? 500);
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        if (opsServer) {
          const server = opsServer;
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
        await closeServices();
      })();
      return closing;
    },
  };
}

/** Resolves when `redis` is ready or after `timeoutMs` (its own retries go on either way). */
function waitReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    redis.once('ready', done);
  });
}

/** The webhook configured by the environment (`PULSE_NOTIFICATION_WEBHOOK_*`), or none without a URL. */
function webhookFromConfig(
  config: PulseConfig,
  kindNames: readonly string[] = notificationTypeSchema.options,
): NotificationWebhookOptions | undefined {
  const { url, secret, rules, pollMs, maxAttempts, timeoutMs } = config.notificationWebhook;
  if (!url) return undefined;
  if (!secret)
    throw new Error('PULSE_NOTIFICATION_WEBHOOK_SECRET is required with PULSE_NOTIFICATION_WEBHOOK_URL');
  // NOTE: the router's kinds (an app's `notificationKinds` included), so a rule may escalate them.
  const unknown = Object.keys(rules).filter((kind) => !kindNames.includes(kind));
  if (unknown.length > 0)
    throw new Error(
      `PULSE_NOTIFICATION_WEBHOOK_RULES: unknown notification kind in ${Object.keys(rules).join(', ')} (the router's kinds: ${kindNames.join(', ')})`,
    );
  const priorities = notificationPrioritySchema
    .array()
    .safeParse(Object.values(rules).flatMap((r) => r.priorities));
  if (!priorities.success) throw new Error('PULSE_NOTIFICATION_WEBHOOK_RULES: unknown priority');
  return {
    url,
    secret,
    rules: rules as NotificationWebhookOptions['rules'],
    pollMs,
    maxAttempts,
    timeoutMs,
  };
}
