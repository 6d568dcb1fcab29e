/** One message on the bus: an event and, for durable streams, its stream-ordered id. */
export interface BusMessage {
  /** Stream-ordered id (durable streams) or undefined (ephemeral). */
  id?: string;
  /** The event, plain JSON data. */
  data: unknown;
  /** Epoch ms when it was published (delivery lag metric). */
  publishedAt?: number;
  /** `JSON.stringify(data)` when the publisher already has it: buses and the hub reuse it as is. */
  json?: string;
}

export type BusHandler = (message: BusMessage) => void;

/** A subscription to one topic; `ready` resolves once messages published after it are guaranteed to arrive. */
export interface BusSubscription {
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Publish/subscribe between nodes. The memory bus serves one node; the Redis bus many.
 * A node holds at most one bus subscription per topic (the hub guarantees it).
 */
export interface Bus {
  readonly kind: 'memory' | 'redis' | 'redis-cluster';
  publish(topic: string, message: BusMessage): Promise<void>;
  subscribe(topic: string, handler: BusHandler): BusSubscription;
  /** Called after the bus lost messages (e.g. a Redis reconnect): ephemeral streams should resend snapshots. */
  onResync(listener: () => void): () => void;
  /** Resolves when the bus can deliver (for readiness probes). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
