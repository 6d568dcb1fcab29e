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
    /** `JSON.stringify(data)` when the publisher already had it (durable events: the stored JSON). */
    serialized?: string,
  ) {
    this.serialized = serialized;
  }
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
  /** The durable topic's head as this sink read it from the store (see `Hub.observeHead`). */
  observeHead(headId: string): void;
  detach(): void;
}

interface TopicState {
  sinks: Set<HubSink>;
  subscription: BusSubscription;
  order: TopicOrder;
  fanOut: (message: BusMessage) => void;
}

/**
 * Cross-node ordering of a durable topic. Ids are per-stream sequences (commit order == id order), but
 * two nodes' publishes can reach the bus out of order: an event past the next expected id is held up to
 * `reorderWindowMs` for the missing one; if that never comes, the held events are dropped and the
 * topic's sinks resync, i.e. replay from the store, which holds everything up to the newest id.
 */
interface TopicOrder {
  /** Highest id delivered (numeric sequence), or undefined before the first durable event. */
  last: number | undefined;
  held: Map<number, BusMessage> | null;
  timer: NodeJS.Timeout | undefined;
}

export interface HubOptions {
  /** How long an out-of-order durable event waits for the ones before it (default 150 ms). */
  reorderWindowMs?: number;
}

export interface HubStats {
  topics: number;
  sinks: number;
}

// NOTE: a class, not an object literal with a `detach` closure: one attachment per subscribed
// socket, so its size is paid 10,000 times per busy workspace.
class Attachment implements HubAttachment {
  private detached = false;
  readonly ready: Promise<void>;
  constructor(
    private readonly hub: Hub,
    private readonly topics: Map<string, TopicState>,
    private readonly topic: string,
    private readonly state: TopicState,
    private readonly sink: HubSink,
  ) {
    this.ready = state.subscription.ready;
  }
  observeHead(headId: string): void {
    if (!this.detached) this.hub.observeHead(this.topic, this.sink, headId);
  }
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    const { state, topic, topics } = this;
    state.sinks.delete(this.sink);
    if (state.sinks.size === 0 && topics.get(topic) === state) {
      topics.delete(topic);
      clearTimeout(state.order.timer);
      void state.subscription.close().catch(() => {});
    }
  }
}

/**
 * Per-node fan-out: one bus subscription per topic however many local sinks need it, dropped when
 * the last sink leaves. Delivery is a plain loop over a Set: O(1) work per event plus one
 * `deliver` call per sink.
 */
export class Hub {
  private readonly topics = new Map<string, TopicState>();
  private readonly unsubscribeResync: () => void;

  private readonly reorderWindowMs: number;

  constructor(
    private readonly bus: Bus,
    opts: HubOptions = {},
  ) {
    this.reorderWindowMs = opts.reorderWindowMs ?? 150;
    this.unsubscribeResync = bus.onResync(() => {
      for (const state of this.topics.values()) for (const sink of state.sinks) sink.resync?.();
    });
  }

  /**
   * Publishes an event to every node's subscribers of `topic`. `json`, when given, must be
   * `JSON.stringify(data)`: it travels with the event so nobody serialises it again.
   */
  publish(topic: string, data: unknown, id?: string, json?: string): Promise<void> {
    const message: BusMessage = { id, data, publishedAt: Date.now() };
    if (json !== undefined) message.json = json;
    return this.bus.publish(topic, message);
  }

  attach(topic: string, sink: HubSink): HubAttachment {
    let state = this.topics.get(topic);
    if (!state) {
      const sinks = new Set<HubSink>();
      const order: TopicOrder = { last: undefined, held: null, timer: undefined };
      const fanOut = (message: BusMessage) => {
        if (sinks.size === 0) return;
        const event = new HubEvent(topic, message.id, message.data, message.publishedAt, message.json);
        for (const s of sinks) {
          try {
            s.deliver(event);
          } catch {
            // NOTE: one broken sink must never stop the broadcast to the others.
          }
        }
      };
      const subscription = this.bus.subscribe(topic, (message: BusMessage) =>
        this.ordered(order, sinks, message, fanOut),
      );
      state = { sinks, subscription, order, fanOut };
      this.topics.set(topic, state);
    }
    state.sinks.add(sink);
    // The topic's bus subscription closes with its last sink.
    return new Attachment(this, this.topics, topic, state, sink);
  }

  /**
   * Tells the hub a durable topic's head as a subscriber just read it from the store (after its
   * bus subscription was live): every id up to `headId` is committed and in that subscriber's
   * replay, so the next event on the bus is `headId + 1` and is delivered at once instead of
   * waiting out the reorder window. Events held meanwhile at or below the head pass through (sinks
   * drop what they replayed); those after it drain in order. Returns whether the head was taken.
   *
   * NOTE: only taken while the topic has no baseline yet and `sink` is its only sink: a head read
   * by one subscriber could be newer than what another one still attaching replays, and events in
   * between that arrive late on the bus would then overtake nothing for the first but be dropped
   * by the second. Otherwise the window rule applies as before (correct, just slower).
   */
  observeHead(topic: string, sink: HubSink, headId: string): boolean {
    const state = this.topics.get(topic);
    if (!state || state.order.last !== undefined) return false;
    if (state.sinks.size !== 1 || !state.sinks.has(sink)) return false;
    const head = Number(headId);
    if (!Number.isSafeInteger(head) || head < 0) return false;
    const { order, fanOut } = state;
    order.last = head;
    const held = order.held;
    if (held) {
      const late = [...held.keys()].filter((seq) => seq <= head).sort((a, b) => a - b);
      for (const seq of late) {
        const message = held.get(seq)!;
        held.delete(seq);
        fanOut(message);
      }
      this.drain(order, fanOut);
    }
    return true;
  }

  /** Delivers durable events of a topic in id order (O(1) per in-order event); others pass through. */
  private ordered(
    order: TopicOrder,
    sinks: Set<HubSink>,
    message: BusMessage,
    fanOut: (message: BusMessage) => void,
  ): void {
    const seq = message.id === undefined ? Number.NaN : Number(message.id);
    if (!Number.isSafeInteger(seq)) {
      fanOut(message);
      return;
    }
    // NOTE: the first durable events a node sees on a topic wait one window too (unless the stream
    // starts there, or a subscriber told the head with `observeHead`), so one that overtook its
    // predecessor on the bus does not become the baseline.
    if (order.last === undefined ? seq > 1 : seq > order.last + 1) {
      order.held ??= new Map();
      order.held.set(seq, message);
      order.timer ??= setTimeout(() => this.windowElapsed(order, sinks, fanOut), this.reorderWindowMs);
      return;
    }
    // An id at or below the last one is late or a duplicate: sinks drop what they already have.
    if (order.last === undefined || seq > order.last) order.last = seq;
    fanOut(message);
    this.drain(order, fanOut);
  }

  /** Delivers held events that are next in line. */
  private drain(order: TopicOrder, fanOut: (message: BusMessage) => void): void {
    const held = order.held;
    if (!held || order.last === undefined) return;
    let next = held.get(order.last + 1);
    while (next) {
      held.delete(order.last + 1);
      order.last += 1;
      fanOut(next);
      next = held.get(order.last + 1);
    }
    if (held.size === 0) {
      order.held = null;
      clearTimeout(order.timer);
      order.timer = undefined;
    }
  }

  private windowElapsed(order: TopicOrder, sinks: Set<HubSink>, fanOut: (message: BusMessage) => void): void {
    order.timer = undefined;
    const held = order.held;
    if (!held || held.size === 0) {
      order.held = null;
      return;
    }
    if (order.last === undefined) {
      // First events on this node: start from the lowest id seen in the window.
      order.last = Math.min(...held.keys()) - 1;
      this.drain(order, fanOut);
      if (order.held)
        order.timer = setTimeout(() => this.windowElapsed(order, sinks, fanOut), this.reorderWindowMs);
      return;
    }
    // The missing ids were lost (or are very late). Everything up to the newest held id is in the
    // store, so sinks replay from it instead of receiving the held events with a hole before them.
    order.held = null;
    order.last = Math.max(order.last, ...held.keys());
    for (const sink of sinks) {
      try {
        sink.resync?.();
      } catch {
        // one broken sink must not stop the others
      }
    }
  }

  stats(): HubStats {
    let sinks = 0;
    for (const state of this.topics.values()) sinks += state.sinks.size;
    return { topics: this.topics.size, sinks };
  }

  async close(): Promise<void> {
    this.unsubscribeResync();
    for (const state of this.topics.values()) clearTimeout(state.order.timer);
    const closing = [...this.topics.values()].map((s) => s.subscription.close().catch(() => {}));
    this.topics.clear();
    await Promise.all(closing);
  }
}
