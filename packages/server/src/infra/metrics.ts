import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from './bus/bus.js';
import type { HubEvent } from './hub.js';

/** Counts a Pulse node exposes at `GET /metrics` (Prometheus text format, own registry). */
export interface PulseMetrics {
  readonly registry: Registry;
  /** Wraps a bus so every publish is counted by topic prefix and event type. */
  instrumentBus(bus: Bus): Bus;
  /** `count` sockets were written one event (transport hook); observes the delivery lag. */
  delivered(count: number, event: HubEvent): void;
  dropped(reason: string): void;
  rateLimited(limit: string): void;
  authFailure(transport: 'ws' | 'http', reason: string): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  nodeId: string;
  /** Read at scrape time. */
  transport(): { connections: number; subscriptionsByPath: Record<string, number> };
  hub(): { topics: number; sinks: number };
}

/** Topic prefix (`presence`, `notifications`, …): bounded label values, never ids. */
export function topicKind(topic: string): string {
  const colon = topic.indexOf(':');
  return label(colon === -1 ? topic : topic.slice(0, colon));
}

function eventType(data: unknown): string {
  const type = (data as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? label(type) : 'none';
}

function label(value: string): string {
  return /^[a-z0-9_.]{1,40}$/i.test(value) ? value : 'other';
}

export function createMetrics(opts: MetricsOptions): PulseMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: opts.nodeId });
  collectDefaultMetrics({ register: registry, prefix: 'pulse_' });

  new Gauge({
    name: 'pulse_connections',
    help: 'Open WebSocket connections',
    registers: [registry],
    collect() {
      this.set(opts.transport().connections);
    },
  });
  new Gauge({
    name: 'pulse_subscriptions',
    help: 'Active subscriptions per procedure',
    labelNames: ['procedure'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [procedure, n] of Object.entries(opts.transport().subscriptionsByPath))
        this.set({ procedure }, n);
    },
  });
  new Gauge({
    name: 'pulse_hub_topics',
    help: 'Topics this node holds a bus subscription for',
    registers: [registry],
    collect() {
      this.set(opts.hub().topics);
    },
  });
  const published = new Counter({
    name: 'pulse_events_published_total',
    help: 'Events published to the bus, by topic kind and event type',
    labelNames: ['kind', 'type'],
    registers: [registry],
  });
  const delivered = new Counter({
    name: 'pulse_events_delivered_total',
    help: 'Event frames written to sockets, by topic kind and event type',
    labelNames: ['kind', 'type'],
    registers: [registry],
  });
  const lag = new Histogram({
    name: 'pulse_delivery_lag_seconds',
    help: 'Time from publish to socket write (once per event and node)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'pulse_events_dropped_total',
    help: 'Events not delivered to a slow consumer (dropped, coalesced, or socket closed)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const limited = new Counter({
    name: 'pulse_rate_limited_total',
    help: 'Calls refused (or, for typing, turned into no-ops) by a rate limit',
    labelNames: ['limit'],
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'pulse_auth_failures_total',
    help: 'Requests and connections refused for a missing, invalid or expired token',
    labelNames: ['transport', 'reason'],
    registers: [registry],
  });

  // NOTE: label children are cached: a fan-out to 10k sockets must not hash labels 10k times.
  const deliveredChildren = new Map<string, Counter.Internal>();

  return {
    registry,
    instrumentBus(bus) {
      return {
        get kind() {
          return bus.kind;
        },
        publish(topic, message) {
          published.inc({ kind: topicKind(topic), type: eventType(message.data) });
          return bus.publish(topic, message);
        },
        subscribe: (topic, handler) => bus.subscribe(topic, handler),
        onResync: (listener) => bus.onResync(listener),
        ping: () => bus.ping(),
        close: () => bus.close(),
      };
    },
    delivered(count, event) {
      let child = event.cache.get('\u0000metrics') as Counter.Internal | undefined;
      if (!child) {
        const kind = topicKind(event.topic);
        const type = eventType(event.data);
        const key = `${kind}\u0000${type}`;
        child = deliveredChildren.get(key);
        if (!child) {
          child = delivered.labels({ kind, type });
          deliveredChildren.set(key, child);
        }
        event.cache.set('\u0000metrics', child);
      }
      child.inc(count);
      if (event.publishedAt !== undefined) {
        const seconds = Math.max(0, (Date.now() - event.publishedAt) / 1000);
        // NOTE: once per event and fan-out, not per socket: the sockets of one broadcast are written
        // in the same synchronous loop, so they share the lag, and 10k observations would cost more
        // than the delivery.
        lag.observe(seconds);
      }
    },
    dropped(reason) {
      dropped.inc({ reason: label(reason) });
    },
    rateLimited(limit) {
      limited.inc({ limit: label(limit) });
    },
    authFailure(transport, reason) {
      authFailures.inc({ transport, reason: label(reason) });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** A bounded label for why a token was refused. */
export function authFailureReason(message: string): string {
  const m = message.toLowerCase();
  if (m.includes('missing')) return 'missing';
  if (m.includes('expired')) return 'expired';
  if (m.includes('signature')) return 'signature';
  if (m.includes('algorithm')) return 'algorithm';
  if (m.includes('claim')) return 'claims';
  if (m.includes('malformed')) return 'malformed';
  return 'invalid';
}
