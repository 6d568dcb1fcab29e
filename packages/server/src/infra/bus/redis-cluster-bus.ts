import { Cluster } from 'ioredis';
import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js';
import { parseEnvelope } from './redis-bus.js';

export interface RedisClusterBusOptions {
  /** Startup nodes, e.g. `['redis://127.0.0.1:7001', 'redis://127.0.0.1:7002']`. */
  nodes: string[];
  /** Prepended to every channel. Default `pulse:`. */
  prefix?: string;
  onError?(error: Error): void;
}

/**
 * Redis Cluster bus with sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7): a topic's messages go only
 * to the shard that owns the topic's slot. ioredis routes each command by slot, follows MOVED, and
 * (with `shardedSubscribers`) keeps one subscriber per shard and resubscribes after a slot change.
 * NOTE: not wired into config/server yet; no resync after a shard restart yet.
 */
export function createRedisClusterBus(
  opts: RedisClusterBusOptions,
): Bus & { stats(): { published: number; received: number } } {
  const prefix = opts.prefix ?? 'pulse:';
  const onError = (error: Error) => opts.onError?.(error);
  const startup = opts.nodes.map((u) => {
    const url = new URL(u);
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
  const cluster = new Cluster(startup, { shardedSubscribers: true, enableOfflineQueue: true });
  cluster.on('error', onError);
  const channels = new Map<string, Set<BusHandler>>();
  const resyncListeners = new Set<() => void>();
  const counters = { published: 0, received: 0 };
  let closed = false;
  cluster.on('smessage', (channel: string, raw: string) => {
    const handlers = channels.get(channel);
    if (!handlers) return;
    counters.received++;
    let message: BusMessage;
    try {
      message = parseEnvelope(raw);
    } catch (error) {
      onError(error as Error);
      return;
    }
    for (const handler of handlers) handler(message);
  });
  return {
    kind: 'redis',
    async publish(topic, message) {
      try {
        await cluster.spublish(
          prefix + topic,
          JSON.stringify({ id: message.id, data: message.data, publishedAt: message.publishedAt }),
        );
        counters.published++;
      } catch (error) {
        onError(error as Error);
      }
    },
    subscribe(topic, handler): BusSubscription {
      const channel = prefix + topic;
      let handlers = channels.get(channel);
      let ready: Promise<void> = Promise.resolve();
      if (!handlers) {
        handlers = new Set();
        channels.set(channel, handlers);
        ready = cluster.ssubscribe(channel).then(
          () => {},
          (error: Error) => onError(error),
        );
      }
      handlers.add(handler);
      return {
        ready,
        async close() {
          const set = channels.get(channel);
          if (!set?.delete(handler) || set.size > 0) return;
          channels.delete(channel);
          if (!closed) await cluster.sunsubscribe(channel).catch(onError);
        },
      };
    },
    onResync(listener) {
      resyncListeners.add(listener);
      return () => resyncListeners.delete(listener);
    },
    async ping() {
      await cluster.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      channels.clear();
      await cluster.quit().catch(() => cluster.disconnect());
    },
    stats: () => ({ ...counters }),
  };
}
