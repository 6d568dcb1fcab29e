import type { Bus, BusMessage, BusSubscription } from './bus/bus.js';

/**
 * One event as the hub hands it to every local subscriber of a topic. Serialisations are cached
 * on it, so a broadcast to N sockets serialises once, not N times.
 */
export class HubEvent {
  /** Transport-owned cache (e.g. pre-built frames per subscription id). */
  readonly cache = new Map<string, unknown>();
  private serialized: string | undefined;
  constructor(
    readonly topic: string,
    readonly id: string | undefined,
    readonly data: unknown,
    readonly publishedAt: number | undefined,
  ) {}
  /** `JSON.stringify(data)`, computed once. */
  json(): string {
    if (this.serialized === undefined) this.serialized = JSON.stringify(this.data);
    return this.serialized;
  }
}

/** A local consumer of a topic (a socket subscription or an in-process iterator). */
export interface HubSink {
  deliver(event: HubEvent): void;
  /** The bus may have lost events (reconnect): ephemeral consumers resend a snapshot. */
  resync?(): void;
}

export interface HubAttachment {
  /** Resolves once the node's bus subscription for the topic is live. */
  ready: Promise<void>;
  detach(): void;
}

interface TopicState {
  sinks: Set<HubSink>;
  subscription: BusSubscription;
}

export interface HubStats {
  topics: number;
  sinks: number;
}

/**
 * Per-node fan-out: one bus subscription per topic however many local sinks need it, dropped when
 * the last sink leaves. Delivery is a plain loop over a Set: O(1) work per event plus one
 * `deliver` call per sink.
 */
export class Hub {
  private readonly topics = new Map<string, TopicState>();
  private readonly unsubscribeResync: () => void;

  constructor(private readonly bus: Bus) {
    this.unsubscribeResync = bus.onResync(() => {
      for (const state of this.topics.values()) for (const sink of state.sinks) sink.resync?.();
    });
  }

  /** Publishes an event to every node's subscribers of `topic`. */
  publish(topic: string, data: unknown, id?: string): Promise<void> {
    return this.bus.publish(topic, { id, data, publishedAt: Date.now() });
  }

  attach(topic: string, sink: HubSink): HubAttachment {
    let state = this.topics.get(topic);
    if (!state) {
      const sinks = new Set<HubSink>();
      const subscription = this.bus.subscribe(topic, (message: BusMessage) => {
        if (sinks.size === 0) return;
        const event = new HubEvent(topic, message.id, message.data, message.publishedAt);
        for (const s of sinks) {
          try {
            s.deliver(event);
          } catch {
            // NOTE: one broken sink must never stop the broadcast to the others.
          }
        }
      });
      state = { sinks, subscription };
      this.topics.set(topic, state);
    }
    const current = state;
    current.sinks.add(sink);
    let detached = false;
    return {
      ready: current.subscription.ready,
      detach: () => {
        if (detached) return;
        detached = true;
        current.sinks.delete(sink);
        if (current.sinks.size === 0 && this.topics.get(topic) === current) {
          this.topics.delete(topic);
          void current.subscription.close().catch(() => {});
        }
      },
    };
  }

  stats(): HubStats {
    let sinks = 0;
    for (const state of this.topics.values()) sinks += state.sinks.size;
    return { topics: this.topics.size, sinks };
  }

  async close(): Promise<void> {
    this.unsubscribeResync();
    const closing = [...this.topics.values()].map((s) => s.subscription.close().catch(() => {}));
    this.topics.clear();
    await Promise.all(closing);
  }
}
