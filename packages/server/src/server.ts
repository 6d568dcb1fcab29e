import type { AddressInfo } from 'node:net';
import { TRPCError } from '@trpc/server';
import type { Principal } from './auth/auth.schema.js';
import { createTokenVerifier } from './auth/token.js';
import { type PulseConfig, type PulseConfigInput, resolveConfig } from './config.js';
import type { Bus } from './infra/bus/bus.js';
import { demoTokensRoute } from './demo/demo-routes.js';
import { createMemoryBus } from './infra/bus/memory-bus.js';
import { createRedisBus } from './infra/bus/redis-bus.js';
import { createHttpServer, type HttpRoute, sendJson } from './infra/http.js';
import { Hub } from './infra/hub.js';
import { createStore, type Store } from './infra/store/db.js';
import { streamMigrations } from './infra/store/streams.js';
import { attachWebSocket, type WsTransportStats } from './infra/ws.js';
import { createMemoryPresenceBackend, type PresenceBackend } from './presence/presence.backend.js';
import { createRedisPresenceBackend } from './presence/presence.redis.js';
import { PresenceService } from './presence/presence.service.js';
import { NotificationService } from './notifications/notifications.service.js';
import { notificationMigrations } from './notifications/notifications.store.js';
import { DashboardService, dashboardMigrations } from './dashboard/dashboard.service.js';
import { inboxMigrations } from './inbox/inbox.tables.js';
import { createInboxService } from './inbox/inbox.wiring.js';
import { createServicePublisher, type ServicePublisher } from './publisher.js';
import { appRouter } from './router.js';
import type { PulseServices } from './services.js';
import { createCallerFactory, type PulseContext } from './trpc.js';

export interface PulseServerOptions {
  /** Overrides on top of defaults (use `loadConfig()` for the environment). */
  config?: PulseConfigInput | PulseConfig;
  /** Bring your own bus / store / presence backend (tests, embedding); defaults follow the config. */
  bus?: Bus;
  store?: Store;
  presenceBackend?: PresenceBackend;
  /** SQLite file name in the data dir (default `pulse.db`); `:memory:` for a throwaway store. */
  sqliteFile?: string;
  /** Extra HTTP routes tried after Pulse's own (e.g. the demo's static app files). */
  routes?: HttpRoute[];
}

const createCaller = createCallerFactory(appRouter);

/** A running Pulse node. */
export interface PulseServer {
  readonly config: PulseConfig;
  /** `http://host:port` */
  readonly url: string;
  /** `ws://host:port/trpc` */
  readonly wsUrl: string;
  readonly port: number;
  readonly services: PulseServices;
  /** Server-side caller with a service principal for every workspace. */
  readonly caller: ReturnType<typeof createCaller>;
  /** In-process publisher (the seed's vocabulary): notifications, presence reads. */
  readonly publish: ServicePublisher;
  /** Server-side caller acting as `principal` (checks apply as for a remote call). */
  callerFor(principal: Principal): ReturnType<typeof createCaller>;
  stats(): {
    transport: WsTransportStats;
    hub: ReturnType<Hub['stats']>;
    presence: ReturnType<PresenceService['stats']>;
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
  extends Pick<PulseServerOptions, 'config' | 'bus' | 'store' | 'presenceBackend' | 'sqliteFile'> {}

/**
 * One node's store (migrated), bus, hub and domain services, without any listener: the part of
 * `startPulseServer` that `createPublisher` reuses in processes without a WebSocket server.
 * `close()` stops the services and closes what it created (not a given bus, store or backend).
 */
export async function createPulseServices(
  opts: PulseServicesOptions = {},
): Promise<{ services: PulseServices; close(): Promise<void> }> {
  const config = resolveConfig(opts.config as PulseConfigInput);
  const bus =
    opts.bus ??
    (config.redisUrl
      ? createRedisBus({ url: config.redisUrl, prefix: config.redisPrefix })
      : createMemoryBus());
  const hub = new Hub(bus);
  const store =
    opts.store ??
    createStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteFile: opts.sqliteFile });
  await store.migrate({
    ...streamMigrations,
    ...notificationMigrations,
    ...dashboardMigrations,
    ...inboxMigrations,
  });
  // NOTE: with Redis, presence is shared by every node (entries tagged with this node's id).
  const presenceBackend =
    opts.presenceBackend ??
    (config.redisUrl
      ? createRedisPresenceBackend({
          url: config.redisUrl,
          prefix: config.redisPrefix,
          nodeId: config.nodeId,
          ttlMs: config.presence.ttlMs,
        })
      : createMemoryPresenceBackend());
  const presence = new PresenceService({
    hub,
    backend: presenceBackend,
    nodeId: config.nodeId,
    graceMs: config.presence.graceMs,
    ttlMs: config.presence.ttlMs,
    typingTtlMs: config.presence.typingTtlMs,
  });
  const notifications = new NotificationService({ hub, store, retention: config.notifications.retention });
  const dashboard = new DashboardService({ hub, store });
  const inbox = createInboxService({ config, hub, store, notifications });
  const services: PulseServices = { config, bus, hub, store, presence, notifications, dashboard, inbox };
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await presence.close();
      await inbox.close();
      if (!opts.presenceBackend) await presenceBackend.close();
      await hub.close();
      if (!opts.bus) await bus.close();
      if (!opts.store) await store.close();
    })();
    return closing;
  };
  return { services, close };
}

/** Starts a Pulse node: store migrated, bus connected, HTTP + WebSocket listening. */
export async function startPulseServer(opts: PulseServerOptions = {}): Promise<PulseServer> {
  const { services, close: closeServices } = await createPulseServices(opts);
  const { config, bus, hub, store, presence } = services;
  const verifier = createTokenVerifier(config.jwt);

  async function contextFor(token: string | undefined, connectionId: string | null): Promise<PulseContext> {
    if (token === undefined) return { principal: null, authError: null, connectionId, services };
    try {
      return { principal: await verifier.verify(token), authError: null, connectionId, services };
    } catch (cause) {
      const authError =
        cause instanceof TRPCError
          ? cause
          : new TRPCError({ code: 'UNAUTHORIZED', message: 'Invalid token' });
      return { principal: null, authError, connectionId, services };
    }
  }

  const routes: HttpRoute[] = [
    (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/healthz') return false;
      sendJson(res, 200, { ok: true, nodeId: config.nodeId });
      return true;
    },
    async (req, res, url) => {
      if (req.method !== 'GET' || url.pathname !== '/readyz') return false;
      try {
        await Promise.all([store.ping(), bus.ping()]);
        sendJson(res, 200, { ok: true });
      } catch (error) {
        sendJson(res, 503, { ok: false, error: (error as Error).message });
      }
      return true;
    },
    ...(config.demoMode ? [demoTokensRoute(config)] : []),
    ...(opts.routes ?? []),
  ];

  const http = createHttpServer({
    router: appRouter,
    routes,
    maxBodySize: config.limits.maxPayloadBytes,
    allowedOrigins: config.allowedOrigins,
    createContext: async (req) => {
      const header = req.headers.authorization;
      const token = header ? (/^Bearer (.+)$/i.exec(header)?.[1] ?? '') : undefined;
      return contextFor(token, null);
    },
  });

  const transport = attachWebSocket<PulseContext>(http, {
    router: appRouter,
    limits: config.limits,
    allowedOrigins: config.allowedOrigins,
    async createContext({ connectionParams, connectionId }) {
      const ctx = await contextFor(connectionParams?.token, connectionId);
      // NOTE: a socket without a valid token is refused outright (FIELD-NOTES: createContext must reject).
      if (!ctx.principal)
        throw ctx.authError ?? new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
      return ctx;
    },
    identify: (ctx) =>
      ctx.principal ? { userId: ctx.principal.userId, expiresAt: ctx.principal.expiresAt } : null,
    onClose: (connectionId) => presence.connectionClosed(connectionId),
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const hostForUrl = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${hostForUrl}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    config,
    url,
    wsUrl: `ws://${hostForUrl}:${port}/trpc`,
    port,
    services,
    caller: createCaller({ principal: servicePrincipal(), authError: null, connectionId: null, services }),
    publish: createServicePublisher(services),
    callerFor: (principal) => createCaller({ principal, authError: null, connectionId: null, services }),
    stats: () => ({ transport: transport.stats(), hub: hub.stats(), presence: presence.stats() }),
    close(closeOpts = {}) {
      closing ??= (async () => {
        await transport.shutdown(closeOpts.graceMs ?? 500);
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await closeServices();
      })();
      return closing;
    },
  };
}
