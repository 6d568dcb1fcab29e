import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Hub } from '../infra/hub.js';
import type { Store } from '../infra/store/db.js';
import type { StreamTables } from '../infra/store/streams.js';
import {
  type AnyTransaction,
  type AppendedEvent,
  DurableStream,
  type DurableStreamSpec,
  type StreamHost,
} from './durable-stream.js';
import type { DurableEvent } from './stream.schema.js';
import { StreamRelay } from './stream-relay.js';

/** Fault injection for tests: never set in production. */
export interface StreamFaults {
  /**
   * Called after a write committed, before its events are published. Throwing skips the publish,
   * as if the process had died right there (the relay of some node must publish them).
   */
  afterCommitBeforePublish?: (streamKey: string) => void;
}

export interface StreamKernelOptions {
  store: Store;
  hub: Hub;
  /** Names the relay's lease holder (a random suffix keeps two kernels of one process apart). */
  nodeId?: string;
  /** How often the relay looks for committed, unpublished events (default 250 ms; 0 = never). */
  relayPollMs?: number;
  /** How long a relay claim lasts without renewal (default 1,000 ms). */
  relayLeaseMs?: number;
  /** Reports failures that reach no caller (a publish after commit, a poll). */
  onError?: (error: unknown, context: string) => void;
  faults?: StreamFaults;
}

/**
 * The durable-stream kernel of a node: domains `define` their stream (name, retention, recipient
 * rule) and write through `transaction`; the kernel allocates ids, stores each event once, replays
 * with `sync` / `reset`, and publishes committed events in id order through its relay (also those
 * another node committed and never published).
 *
 * @example
 * const kernel = new StreamKernel({ store, hub });
 * const todos = kernel.define<TodoEvent>({ name: 'todos', retention: 500 });
 * await kernel.transaction(store.db, (trx) => todos.append(trx, 'acme', { type: 'added', workspaceId: 'acme', at, text }));
 * const live = todos.subscribe({ workspaceId: 'acme', lastEventId });
 */
export class StreamKernel {
  private readonly db: Kysely<StreamTables>;
  private readonly streams = new Map<string, DurableStream<DurableEvent>>();
  private readonly pending = new WeakMap<AnyTransaction, AppendedEvent[]>();
  private readonly relay: StreamRelay;
  private readonly host: StreamHost;

  constructor(private readonly opts: StreamKernelOptions) {
    this.db = opts.store.db.withTables<StreamTables>();
    const onError = (error: unknown, context: string) => opts.onError?.(error, context);
    this.relay = new StreamRelay({
      db: this.db,
      hub: opts.hub,
      owner: `${opts.nodeId ?? 'node'}:${randomUUID().slice(0, 8)}`,
      leaseMs: opts.relayLeaseMs ?? 1_000,
      pollMs: opts.relayPollMs ?? 250,
      resolve: (streamKey) => this.streams.get(streamKey.slice(0, streamKey.indexOf(':'))),
      onError,
    });
    this.host = {
      db: this.db,
      hub: opts.hub,
      appended: (trx, event) => this.pending.get(trx)?.push(event),
    };
  }

  /** Declares a durable domain's stream (one name per kernel). */
  define<E extends DurableEvent>(spec: DurableStreamSpec<E>): DurableStream<E> {
    if (spec.name.includes(':')) throw new Error(`Stream name ${spec.name} must not contain ':'`);
    if (this.streams.has(spec.name)) throw new Error(`Stream ${spec.name} is defined twice`);
    const stream = new DurableStream<E>(this.host, spec);
    this.streams.set(spec.name, stream as unknown as DurableStream<DurableEvent>);
    return stream;
  }

  /**
   * Runs `fn` in one transaction of `db` (the kernel's store, with the caller's tables); events it
   * appends are published once it commits, in id order (resolves after that). A rejection rolls
   * everything back and publishes nothing.
   */
  async transaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    const appended: AppendedEvent[] = [];
    const result = await db.transaction().execute(async (trx) => {
      this.pending.set(trx, appended);
      try {
        return await fn(trx);
      } finally {
        this.pending.delete(trx);
      }
    });
    await this.publishCommitted(appended);
    return result;
  }

  /** Publishes whatever is committed and unpublished on this node's streams (what the poller does). */
  relayNow(): Promise<void> {
    return this.relay.poll();
  }

  /** Stops the relay (after the runs under way). The store and hub stay open. */
  close(): Promise<void> {
    return this.relay.close();
  }

  private async publishCommitted(appended: AppendedEvent[]): Promise<void> {
    if (appended.length === 0) return;
    const byStream = new Map<string, AppendedEvent[]>();
    for (const event of appended) {
      const list = byStream.get(event.streamKey);
      if (list) list.push(event);
      else byStream.set(event.streamKey, [event]);
    }
    for (const [streamKey, events] of byStream) {
      try {
        this.opts.faults?.afterCommitBeforePublish?.(streamKey);
      } catch (error) {
        this.opts.onError?.(error, `stream ${streamKey}: publish skipped (fault injection)`);
        continue;
      }
      await this.relay.publish(streamKey, events);
    }
  }
}
