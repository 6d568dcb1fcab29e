import type { Cluster } from 'ioredis';
import { createRedisClient } from '../redis-client.js';
import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js';
import type { RedisBusStats } from './redis-bus.js';
import { dispatchRaw, envelope, fireResyncListeners, holdChannel, RESYNC_CHANNEL } from './redis-envelope.js';

export interface RedisClusterBusOptions {
  /** Startup nodes, e.g. `['127.0.0.1:7001', 'redis://127.0.0.1:7002']`. */
  nodes: string[];
  /** Prepended to every channel. Default `pulse:`. */
  prefix?: string;
  /** Told about connection trouble (never thrown: the store is the source of truth). */
  onError?(error: Error): void;
  /** How often a node whose publish failed checks whether the topic's shard is back (default 250 ms). */
  recoveryPollMs?: number;
}

/**
 * Redis Cluster bus with sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7): a topic's messages go only
 * to the shard that owns the topic's slot, not to every node of the cluster. ioredis routes each
 * command by slot, follows MOVED, and (with `shardedSubscribers`) keeps one subscriber connection per
 * shard, replacing one whose shard went away.
 *
 * Recovery follows the single-Redis bus: the control channel (`<prefix>__resync`, itself on one shard)
 * asks every node to resync. When a shard's subscriber is lost, the bus subscribes its channels again
 * once ioredis has a subscriber for that shard and then calls the `onResync` listeners (durable events
 * replay from the store, ephemeral streams resend snapshots). A node whose publish failed (the topic's
 * shard down) polls that shard and, once it answers, asks every node to resync.
 *
 * @example
 * const bus = createRedisClusterBus({ nodes: ['10.0.0.1:6379', '10.0.0.2:6379'], prefix: 'pulse:' });
 */
export function createRedisClusterBus(opts: RedisClusterBusOptions): Bus & { stats(): RedisBusStats } {
  const prefix = opts.prefix ?? 'pulse:';
  const onError = (error: Error) => opts.onError?.(error);
  const resyncChannel = prefix + RESYNC_CHANNEL;
  const pollMs = opts.recoveryPollMs ?? 250;
  // NOTE: one failed attempt per command (no waiting out a dead shard inside a mutation); the offline
  // queue holds commands only until the cluster's first connection (start-up).
  const cluster = createRedisClient(
    { cluster: opts.nodes },
    { maxRetriesPerRequest: 1, retryStrategy: (times) => Math.min(50 * times, 1000) },
    { shardedSubscribers: true },
  ) as Cluster;
  cluster.on('error', onError);
  cluster.on('nodeError', onError);

  /** channel -> handlers (normally one: the hub's). */
  const channels = new Map<string, Set<BusHandler>>();
  /** channel -> SSUBSCRIBE acknowledgement in flight or done. */
  const acks = new Map<string, Promise<void>>();
  const resyncListeners = new Set<() => void>();
  let closed = false;
  /** A shard's subscriber went away: its channels are not held until `restore()` succeeds. */
  let lost = false;
  let restoring = false;
  /** Counts losses, so a restore that raced a new one does not clear `lost`. */
  let losses = 0;
  /** A channel whose publish failed: once its shard answers again every node is asked to resync. */
  let failedChannel: string | null = null;
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, pollMs);
    timers.add(timer);
  };
  const counters = { published: 0, received: 0, publishFailures: 0, resyncs: 0, localDeliveries: 0 };

  const fireResync = () => fireResyncListeners(resyncListeners, counters);

  // NOTE: a failed subscribe is reported; the next restore subscribes every channel still wanted.
  const subscribeChannel = (channel: string): Promise<void> =>
    holdChannel(channel, (c) => cluster.ssubscribe(c), acks, onError);
  void subscribeChannel(resyncChannel);

  /** Holds `channel` again: SSUBSCRIBE's reply says it is held (on a live subscriber of its shard). */
  const resubscribe = async (channel: string) => {
    // NOTE: ioredis keeps a list of the channels to restore on a new subscriber and appends to it on
    // every SSUBSCRIBE; the SUNSUBSCRIBE first keeps one entry per channel. The instant between the
    // two is covered like the outage itself, by the resync that follows.
    await cluster.sunsubscribe(channel).catch(() => {});
    await cluster.ssubscribe(channel);
  };
  /**
   * Holds every wanted channel again, then lets streams recover what they missed. ioredis replaces a
   * lost shard subscriber and resubscribes it by itself, but does not tell when that is done; the
   * replies here do. Until every reply comes back it tries again, every `recoveryPollMs`.
   */
  const restore = async () => {
    if (restoring || closed || !lost) return;
    restoring = true;
    const since = losses;
    try {
      await Promise.all([resyncChannel, ...channels.keys()].map(resubscribe));
      // Lost again meanwhile: another attempt finishes the job.
      if (losses === since) lost = false;
      if (!closed) fireResync();
    } catch (error) {
      onError(error as Error);
    } finally {
      restoring = false;
      if (lost && !closed) later(() => void restore());
    }
  };
  const markLost = () => {
    if (closed) return;
    lost = true;
    losses++;
    later(() => void restore());
  };
  // NOTE: `-node` comes for a lost shard subscriber, and also for a dropped command connection (then
  // every channel is still held: the restore succeeds at once and the resync is a spare, harmless).
  // A second `ready` follows a reconnect of the whole cluster client (ioredis stopped every
  // subscriber meanwhile). `subscribersReady` comes after ioredis rebuilt its subscribers: a chance
  // to finish sooner.
  cluster.on('-node', markLost);
  let readyOnce = false;
  cluster.on('ready', () => {
    if (readyOnce) markLost();
    readyOnce = true;
  });
  cluster.on('subscribersReady', () => void restore());

  const checkFailedShard = async () => {
    const channel = failedChannel;
    if (!channel) return;
    try {
      // A keyed command on the channel's name goes to the shard that owns the channel.
      await cluster.exists(channel);
      await cluster.spublish(resyncChannel, '{}');
      if (failedChannel === channel) failedChannel = null;
    } catch {
      later(() => void checkFailedShard());
    }
  };

  cluster.on('smessage', (channel: string, raw: string) => {
    if (channel === resyncChannel) {
      if (!closed) fireResync();
      return;
    }
    if (dispatchRaw(channels.get(channel), raw, onError)) counters.received++;
  });

  /** An ephemeral event its shard could not carry goes to this node's own subscribers (see redis-bus.ts). */
  const deliverLocally = (channel: string, message: BusMessage) => {
    if (message.id !== undefined || closed) return;
    const handlers = channels.get(channel);
    if (!handlers) return;
    counters.localDeliveries++;
    for (const handler of handlers) handler(message);
  };

  return {
    kind: 'redis-cluster',
    async publish(topic, message) {
      const channel = prefix + topic;
      try {
        await cluster.spublish(channel, envelope(message));
        counters.published++;
        if (lost) deliverLocally(channel, message);
      } catch (error) {
        counters.publishFailures++;
        onError(error as Error);
        deliverLocally(channel, message);
        const polling = failedChannel !== null;
        failedChannel = channel;
        if (!polling) later(() => void checkFailedShard());
      }
    },
    subscribe(topic, handler): BusSubscription {
      const channel = prefix + topic;
      let handlers = channels.get(channel);
      let ready: Promise<void>;
      if (!handlers) {
        handlers = new Set();
        channels.set(channel, handlers);
        ready = subscribeChannel(channel);
        // NOTE: while a shard is lost the stream need not wait: `restore()` holds it and resyncs.
        if (lost) ready = Promise.resolve();
      } else {
        ready = acks.get(channel) ?? Promise.resolve();
      }
      handlers.add(handler);
      let closedSub = false;
      return {
        ready,
        async close() {
          if (closedSub) return;
          closedSub = true;
          const set = channels.get(channel);
          if (!set) return;
          set.delete(handler);
          if (set.size > 0) return;
          channels.delete(channel);
          acks.delete(channel);
          if (!closed) await cluster.sunsubscribe(channel).catch(onError);
        },
      };
    },
    onResync(listener) {
      resyncListeners.add(listener);
      return () => resyncListeners.delete(listener);
    },
    async ping() {
      await Promise.all([cluster.ping(), acks.get(resyncChannel)]);
      if (lost) throw new Error('Redis Cluster: a shard subscriber is lost');
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      channels.clear();
      acks.clear();
      resyncListeners.clear();
      await cluster.quit().catch(() => cluster.disconnect());
    },
    stats: () => ({ ...counters, channels: channels.size }),
  };
}
