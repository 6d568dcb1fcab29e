import { randomUUID } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Hub } from '../infra/hub.js';
import type { Store } from '../infra/store/db.js';
import { HotQuery } from '../infra/store/hot-query.js';
import { nextSeq, type StreamTables } from './streams.tables.js';
import {
  type AnyTransaction,
  type AppendedEvent,
  DurableStream,
  type DurableStreamSpec,
  type StreamHost,
} from './durable-stream.js';
import type { DurableEvent } from './stream.schema.js';
import { type RelayClaim, StreamRelay } from './stream-relay.js';

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
  /**
   * Group commit (on by default; off with `false` here or `PULSE_STREAM_GROUP_COMMIT=0` / `false`):
   * writes that arrive while a transaction is in flight share the next one, each in its own
   * savepoint. Off, each write runs in its own transaction. Measured against one transaction per
   * write (BENCHMARKS.md "Durable writes"): no worse with one write in flight, fewer statements and
   * less CPU per write with many. One group runs at a time per kernel, and a write must not open a
   * kernel transaction from inside its own.
   */
  groupCommit?: boolean;
  /** Most writes in one group (default 256). */
  maxGroup?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: the kernel runs any domain's transaction
type AnyDb = Kysely<any>;

/** One caller's write waiting for (or running in) a commit group. */
interface Member {
  fn: (trx: AnyTransaction) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Outcome = { ok: true; value: unknown; events: AppendedEvent[] } | { ok: false; error: unknown };

/** A stream's id as the group's transaction stored it (`stored`) and as its members took them (`next`). */
interface HeadEntry {
  stored: number;
  next: number;
}

// NOTE: a group's statements (hot: built and compiled once).
const savepoint = new HotQuery((_db) => sql`savepoint pulse_member`);
const releaseSavepoint = new HotQuery((_db) => sql`release savepoint pulse_member`);
const rollbackSavepoint = new HotQuery((_db) => sql`rollback to savepoint pulse_member`);
const storeHead = new HotQuery(
  (_db, seq: number, streamKey: string) =>
    sql`update pulse_streams set seq = ${seq} where stream_key = ${streamKey}`,
);

/** Thrown inside a group's transaction to roll it back after a member-independent failure. */
class GroupFailed extends Error {}

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
  private readonly heads = new WeakMap<AnyTransaction, Map<string, HeadEntry>>();
  private readonly waiting: Member[] = [];
  private draining = false;
  private readonly groupCommit: boolean;
  private readonly maxGroup: number;

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
      nextSeq: (trx, streamKey) => this.nextSeq(trx, streamKey),
    };
    const env = process.env.PULSE_STREAM_GROUP_COMMIT;
    this.groupCommit = opts.groupCommit ?? !(env === '0' || env === 'false');
    this.maxGroup = Math.max(1, opts.maxGroup ?? 256);
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
   * back everything `fn` did and publishes nothing of it.
   *
   * With group commit (the default), calls that arrive while a transaction is in flight share the
   * next one: each `fn` runs alone in its own savepoint (one after another, in arrival order), a
   * stream's id is taken from the store once per group and handed out in memory, and its new head is
   * stored once before commit. A failing `fn` rolls back to its savepoint and rejects alone; every
   * caller is settled only after the group's commit (a duplicate key a member hit is then visible to
   * other connections). If the group's transaction itself fails (commit, connection), each member
   * is retried in a transaction of its own, so every caller gets its own honest outcome. `fn` may
   * therefore run twice (its first run rolled back): keep it free of effects outside `trx`.
   */
  transaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    if (!this.groupCommit) return this.alone(db as AnyDb, fn as Member['fn']) as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ fn: fn as Member['fn'], resolve: resolve as Member['resolve'], reject });
      if (!this.draining) void this.drain();
    });
  }

  /** One transaction for `fn` alone (group commit off, or a retry after a failed group). */
  private async alone(db: AnyDb, fn: Member['fn']): Promise<unknown> {
    const appended: AppendedEvent[] = [];
    let claims: Map<string, RelayClaim> | undefined;
    const result = await db.transaction().execute(async (trx) => {
      this.pending.set(trx, appended);
      try {
        const value = await fn(trx);
        claims = await this.claimWithin(trx, appended);
        return value;
      } finally {
        this.pending.delete(trx);
      }
    });
    await this.publishCommitted(appended, claims);
    return result;
  }

  /** Runs groups of waiting writes, one transaction at a time, until none wait. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // NOTE: let the writes issued in this tick join the first group too.
      await Promise.resolve();
      while (this.waiting.length > 0) {
        const members = this.waiting.splice(0, this.maxGroup);
        await this.runGroup(members);
      }
    } finally {
      this.draining = false;
    }
  }

  /** Commits one group; settles each member after commit and publication. Never rejects. */
  private async runGroup(members: Member[]): Promise<void> {
    if (members.length === 1) {
      const [member] = members as [Member];
      // A group of one is the plain transaction (no savepoint); its publication runs beside the next group.
      const appended: AppendedEvent[] = [];
      let claims: Map<string, RelayClaim> | undefined;
      let result: unknown;
      try {
        result = await this.db.transaction().execute(async (trx) => {
          this.pending.set(trx, appended);
          this.heads.set(trx, new Map());
          try {
            const value = await member.fn(trx);
            await this.storeHeads(trx);
            claims = await this.claimWithin(trx, appended);
            return value;
          } finally {
            this.pending.delete(trx);
            this.heads.delete(trx);
          }
        });
      } catch (error) {
        member.reject(error);
        return;
      }
      void this.publishCommitted(appended, claims).then(() => member.resolve(result));
      return;
    }
    const outcomes: Outcome[] = [];
    let claims: Map<string, RelayClaim> | undefined;
    try {
      await this.db.transaction().execute(async (trx) => {
        const heads = new Map<string, HeadEntry>();
        this.heads.set(trx, heads);
        try {
          for (const member of members) {
            const events: AppendedEvent[] = [];
            this.pending.set(trx, events);
            const before = new Map([...heads].map(([key, entry]) => [key, { ...entry }]));
            await this.statement(savepoint, trx);
            try {
              const value = await member.fn(trx);
              await this.statement(releaseSavepoint, trx);
              outcomes.push({ ok: true, value, events });
            } catch (error) {
              if (error instanceof GroupFailed) throw error;
              await this.statement(rollbackSavepoint, trx);
              await this.statement(releaseSavepoint, trx);
              // Ids the member took are given back: the next member continues gap-free.
              heads.clear();
              for (const [key, entry] of before) heads.set(key, entry);
              outcomes.push({ ok: false, error });
            }
          }
          this.pending.delete(trx);
          await this.storeHeads(trx);
          try {
            claims = await this.claimWithin(
              trx,
              outcomes.flatMap((outcome) => (outcome.ok ? outcome.events : [])),
            );
          } catch (error) {
            throw new GroupFailed('could not claim the relay lease', { cause: error });
          }
        } finally {
          this.pending.delete(trx);
          this.heads.delete(trx);
        }
      });
    } catch (error) {
      this.opts.onError?.(error, `stream commit group of ${members.length}: retrying each write alone`);
      for (const member of members) {
        await this.alone(this.db, member.fn).then(member.resolve, member.reject);
      }
      return;
    }
    const appended = outcomes.flatMap((outcome) => (outcome.ok ? outcome.events : []));
    void this.publishCommitted(appended, claims).then(() => {
      members.forEach((member, i) => {
        const outcome = outcomes[i] as Outcome;
        if (outcome.ok) member.resolve(outcome.value);
        else member.reject(outcome.error);
      });
    });
  }

  /** A savepoint statement: its failure is the group's, not the member's. */
  private async statement(query: HotQuery<[]>, trx: AnyTransaction): Promise<void> {
    try {
      await query.execute(trx);
    } catch (error) {
      throw new GroupFailed('savepoint failed', { cause: error });
    }
  }

  /**
   * The next id of a stream inside `trx`. In a group's transaction the first call per stream takes
   * it from the store (on PostgreSQL: the stream's row lock, held to commit); later ones count on in
   * memory, and `storeHeads` writes the last one before commit.
   */
  private async nextSeq(trx: AnyTransaction, streamKey: string): Promise<number> {
    const heads = this.heads.get(trx);
    if (!heads) return nextSeq(trx, streamKey);
    const entry = heads.get(streamKey);
    if (entry) {
      entry.next += 1;
      return entry.next;
    }
    const seq = await nextSeq(trx, streamKey);
    const raced = heads.get(streamKey);
    if (raced) {
      // Two concurrent first calls of one member: both went to the store; keep the higher.
      raced.stored = Math.max(raced.stored, seq);
      raced.next = Math.max(raced.next, seq);
      return seq;
    }
    heads.set(streamKey, { stored: seq, next: seq });
    return seq;
  }

  /** Stores each stream's head the group's members moved past what the store handed out. */
  private async storeHeads(trx: AnyTransaction): Promise<void> {
    const heads = this.heads.get(trx);
    if (!heads) return;
    for (const [streamKey, entry] of heads) {
      if (entry.next === entry.stored) continue;
      try {
        await storeHead.execute(trx, entry.next, streamKey);
      } catch (error) {
        throw new GroupFailed(`could not store the head of ${streamKey}`, { cause: error });
      }
    }
  }

  /** Publishes whatever is committed and unpublished on this node's streams (what the poller does). */
  relayNow(): Promise<void> {
    return this.relay.poll();
  }

  /** Stops the relay (after the runs under way). The store and hub stay open. */
  close(): Promise<void> {
    return this.relay.close();
  }

  /**
   * Takes the relay lease of each stream `appended` wrote to, inside the writing transaction (after
   * its last append, before commit): the publication after commit then needs no claim of its own.
   */
  private async claimWithin(
    trx: AnyTransaction,
    appended: AppendedEvent[],
  ): Promise<Map<string, RelayClaim> | undefined> {
    let claims: Map<string, RelayClaim> | undefined;
    let previous: string | undefined;
    const tried = new Set<string>();
    for (const { streamKey } of appended) {
      if (streamKey === previous || tried.has(streamKey)) continue;
      previous = streamKey;
      tried.add(streamKey);
      const claim = await this.relay.claimWithin(trx, streamKey);
      if (!claim) continue;
      claims ??= new Map();
      claims.set(streamKey, claim);
    }
    return claims;
  }

  private async publishCommitted(appended: AppendedEvent[], claims?: Map<string, RelayClaim>): Promise<void> {
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
      await this.relay.publish(streamKey, events, claims?.get(streamKey));
    }
  }
}
