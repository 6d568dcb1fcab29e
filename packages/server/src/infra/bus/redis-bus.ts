import { Redis } from 'ioredis';
import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js';
import { dispatchRaw, envelope, fireResyncListeners, holdChannel, RESYNC_CHANNEL } from './redis-envelope.js';

export { parseEnvelope } from './redis-envelope.js';

export interface RedisBusOptions {
  /** `redis://host:port/db` */
  url: string;
  /** Prepended to every channel (tests give each run its own). Default `pulse:`. */
  prefix?: string;
  /** Told about connection trouble (never thrown: the store is the source of truth). */
  onError?(error: Error): void;
}

/**
 * Redis pub/sub bus for many nodes: one connection publishes, one subscribes. The node holds one Redis
 * channel per topic with local subscribers (the hub asks once per topic) and drops it when none remain.
 *
 * After a lost connection it resubscribes by itself and then calls the `onResync` listeners, so live
 * streams replay durable events from the store and resend ephemeral snapshots. Publishing never throws:
 * an event that could not reach Redis while it was down is recovered the same way (durable events are
 * in the store; a node whose publish failed asks every node to resync once Redis is back).
 *
 * @example
 * const bus = createRedisBus({ url: 'redis://127.0.0.1:6379', prefix: 'pulse:' });
 * const server = await startPulseServer({ bus });
 */
export function createRedisBus(opts: RedisBusOptions): Bus & { stats(): RedisBusStats } {
  const prefix = opts.prefix ?? 'pulse:';
  const onError = (error: Error) => opts.onError?.(error);
  const resyncChannel = prefix + RESYNC_CHANNEL;
  // NOTE: commands never wait for a reconnect: a publish while Redis is down fails fast (and is recovered
  // by a resync) instead of holding a mutation open; subscriptions are restored by `restore()` below.
  const pub = new Redis(opts.url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  const sub = new Redis(opts.url, {
    autoResubscribe: false,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  pub.on('error', onError);
  sub.on('error', onError);
  // Publishes wait for the first connection only (start-up), never for a reconnect.
  const pubConnected = new Promise<void>((resolve) => pub.once('ready', () => resolve()));

  /** channel -> handlers (normally one: the hub's). */
  const channels = new Map<string, Set<BusHandler>>();
  /** channel -> SUBSCRIBE acknowledgement in flight or done. */
  const acks = new Map<string, Promise<void>>();
  const resyncListeners = new Set<() => void>();
  let closed = false;
  let subReadyOnce = false;
  let publishFailedSince = false;
  const counters = { published: 0, received: 0, publishFailures: 0, resyncs: 0, localDeliveries: 0 };

  const fireResync = () => fireResyncListeners(resyncListeners, counters);

  // NOTE: a failed subscribe is reported; the next reconnect resubscribes every channel still wanted.
  const subscribeChannel = (channel: string): Promise<void> =>
    holdChannel(channel, (c) => sub.subscribe(c), acks, onError);

  // The control channel is always held, so any node can ask the others to resync.
  void subscribeChannel(resyncChannel);

  /** After a reconnect: hold every wanted channel again, then let streams recover what was missed. */
  const restore = async () => {
    const wanted = [resyncChannel, ...channels.keys()];
    try {
      await sub.subscribe(...wanted);
    } catch (error) {
      onError(error as Error);
      return;
    }
    if (!closed) fireResync();
  };
  sub.on('ready', () => {
    if (subReadyOnce) void restore();
    subReadyOnce = true;
  });
  pub.on('ready', () => {
    if (!publishFailedSince) return;
    publishFailedSince = false;
    // NOTE: events this node failed to publish are in the store; every node replays them on resync.
    pub.publish(resyncChannel, '{}').catch(onError);
  });

  sub.on('message', (channel: string, raw: string) => {
    if (channel === resyncChannel) {
      if (!closed) fireResync();
      return;
    }
    if (dispatchRaw(channels.get(channel), raw, onError)) counters.received++;
  });

  /**
   * While Redis cannot carry an ephemeral event to this node's own subscribers (either connection
   * down), they get it straight away: presence and typing keep working among a node's own sockets.
   * NOTE: ephemeral only. Durable events are in the store and come back with the resync, in order;
   * ephemeral ones are superseded by the snapshot that resync sends, so a local copy cannot be stale
   * for long, and one delivered twice (sub just came back) is a repeated join/update, harmless.
   */
  const deliverLocally = (topic: string, message: BusMessage) => {
    if (message.id !== undefined || closed) return;
    const handlers = channels.get(prefix + topic);
    if (!handlers) return;
    counters.localDeliveries++;
    for (const handler of handlers) handler(message);
  };

  return {
    kind: 'redis',
    async publish(topic, message) {
      try {
        if (pub.status !== 'ready') await pubConnected;
        await pub.publish(prefix + topic, envelope(message));
        counters.published++;
        if (sub.status !== 'ready') deliverLocally(topic, message);
      } catch (error) {
        counters.publishFailures++;
        publishFailedSince = true;
        onError(error as Error);
        deliverLocally(topic, message);
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
        // NOTE: while the subscriber connection is down the SUBSCRIBE waits for it; the stream need
        // not: it gets this node's own events locally meanwhile, and `restore()` subscribes every
        // wanted channel and resyncs (a fresh snapshot, a replay) once Redis is back.
        if (subReadyOnce && sub.status !== 'ready') ready = Promise.resolve();
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
          // NOTE: commands on one connection run in order, so a SUBSCRIBE issued after this wins.
          if (!closed && sub.status === 'ready') await sub.unsubscribe(channel).catch(onError);
        },
      };
    },
    onResync(listener) {
      resyncListeners.add(listener);
      return () => resyncListeners.delete(listener);
    },
    async ping() {
      await Promise.all([pub.ping(), acks.get(resyncChannel)]);
      if (sub.status !== 'ready') throw new Error(`Redis subscriber is ${sub.status}`);
    },
    async close() {
      if (closed) return;
      closed = true;
      channels.clear();
      acks.clear();
      resyncListeners.clear();
      const quit = async (client: Redis) => {
        if (client.status !== 'ready') return client.disconnect();
        await client.quit().catch(() => client.disconnect());
      };
      await Promise.all([quit(pub), quit(sub)]);
    },
    stats: () => ({ ...counters, channels: channels.size }),
  };
}

export interface RedisBusStats {
  published: number;
  received: number;
  publishFailures: number;
  resyncs: number;
  /** Ephemeral events handed to this node's subscribers directly while Redis could not carry them. */
  localDeliveries: number;
  /** Topic channels held now (the control channel not counted). */
  channels: number;
}
