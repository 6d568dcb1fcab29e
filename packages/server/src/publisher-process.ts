import type { AnyTRPCRouter } from '@trpc/server';
import type { AnyChannel } from './channels/channel.js';
import { kindsOfRouter } from './kinds.js';
import { type PulseConfigInput, resolveConfig } from './config.js';
import { createServicePublisher, type ServicePublisher } from './publisher.js';
import type { AppRouter } from './router.js';
import { createPulseServices } from './server.js';
import type { PulseServices } from './services.js';

export interface PublisherOptions<TRouter extends AnyTRPCRouter = AppRouter> {
  /**
   * The router the nodes serve (`createPulseRouter({ notificationKinds, dashboardKinds })`): every
   * call validates against its kinds, and `notification` / `dashboard` are typed with them. Default:
   * Pulse's own kinds.
   */
  router?: TRouter;
  /** The cluster's PostgreSQL (`postgres://…`); events are stored here before they are broadcast. */
  databaseUrl: string;
  /** The cluster's Redis: events cross it to every node's sockets (or `redisCluster`). */
  redisUrl?: string;
  /** A Redis Cluster's startup nodes (the nodes' `PULSE_REDIS_CLUSTER`) instead of `redisUrl`. */
  redisCluster?: string[];
  /** Must match the nodes' `PULSE_REDIS_PREFIX` (default `pulse:`). */
  redisPrefix?: string;
  /** The app's channels this process publishes on (the same definitions the nodes register). */
  channels?: readonly AnyChannel[];
  /** Anything else of the nodes' configuration the services read (SLA, retention…). */
  config?: Omit<PulseConfigInput, 'databaseUrl' | 'redisUrl' | 'redisCluster' | 'redisPrefix'>;
}

/** The seed's publishing methods for a process that runs no WebSocket server; `close()` when done. */
export type Publisher<TRouter extends AnyTRPCRouter = AppRouter> = ServicePublisher<TRouter> & {
  /** The services underneath (store, bus, domains) for anything the methods do not cover. */
  readonly services: PulseServices;
  close(): Promise<void>;
} & AsyncDisposable;

/**
 * Publishes from another process (a worker, a cron job): builds the store (migrations included),
 * the Redis bus, the hub and the domain services, with no listener. Every method stores first, then
 * broadcasts through Redis to the sockets of every node.
 *
 * @example
 * const publisher = await createPublisher({ databaseUrl: process.env.DATABASE_URL!, redisUrl: process.env.REDIS_URL! });
 * await publisher.sendCrisisAlert({ workspaceId: 'acme', data: { severity: 'high', topic: 'outage', volume: 420 } });
 * await publisher.close();
 */
export async function createPublisher<TRouter extends AnyTRPCRouter = AppRouter>(
  opts: PublisherOptions<TRouter>,
): Promise<Publisher<TRouter>> {
  // NOTE: without Redis the events would stay in this process (a memory bus): refused.
  if (!opts.redisUrl && !opts.redisCluster?.length)
    throw new Error('createPublisher: give redisUrl or redisCluster (the nodes’ Redis)');
  const config = resolveConfig({
    logLevel: 'warn',
    ...opts.config,
    nodeId: opts.config?.nodeId ?? `publisher-${process.pid}`,
    databaseUrl: opts.databaseUrl,
    redisUrl: opts.redisUrl,
    redisCluster: opts.redisCluster,
    redisPrefix: opts.redisPrefix,
  });
  const kinds = opts.router ? kindsOfRouter(opts.router) : undefined;
  const { services, close } = await createPulseServices({
    config,
    channels: opts.channels,
    notificationKinds: kinds?.notifications?.types,
  });
  const publisher = createServicePublisher<TRouter>(services, kinds);
  return Object.assign(publisher, {
    services,
    close,
    [Symbol.asyncDispose]: close,
  });
}
