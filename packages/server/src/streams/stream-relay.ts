import type { Kysely } from 'kysely';
import type { Hub } from '../infra/hub.js';
import { HotQuery } from '../infra/store/hot-query.js';
import type { StreamTables } from './streams.tables.js';
import type { AppendedEvent, DurableStream } from './durable-stream.js';
import type { DurableEvent } from './stream.schema.js';

/** Events published per lease renewal. */
const BATCH = 500;

export interface StreamRelayOptions {
  db: Kysely<StreamTables>;
  hub: Hub;
  /** Lease holder id, unique per relay instance. */
  owner: string;
  /** How long a claim lasts without renewal (another node takes over after it). */
  leaseMs: number;
  /** How often to look for committed, unpublished events; 0 = never (publish after own writes only). */
  pollMs: number;
  /** The stream definition a stream key belongs to (undefined: not a stream this node knows). */
  resolve(streamKey: string): DurableStream<DurableEvent> | undefined;
  onError(error: unknown, context: string): void;
}

/** A lease a writer's transaction took (`claimWithin`): the stream's watermark and head as it committed them. */
export interface RelayClaim {
  from: number;
  to: number;
}

interface RelayState {
  running: Promise<void> | null;
  queued: Promise<void> | null;
  /** A lease this node's writer took in its own transaction: the next run starts from it instead of claiming. */
  claimed: RelayClaim | null;
  /** Events this node appended and has not published yet (saves reading them back). */
  local: Map<number, AppendedEvent>;
}

// NOTE: every durable write runs the claim and a release: hot statements (built and compiled once).
type Db = Kysely<StreamTables>;
type Head = { published_seq: number | string; seq: number | string };

/** Takes a stream with unpublished events and no live lease. */
const claimQuery = new HotQuery<[string, number, string, number], Head>(
  (db, owner: string, until: number, streamKey: string, at: number) =>
    (db as Db)
      .updateTable('pulse_streams')
      .set({ relay_owner: owner, relay_until: until })
      .where('stream_key', '=', streamKey)
      .where((eb) => eb('published_seq', '<', eb.ref('seq')))
      .where((eb) => eb.or([eb('relay_until', 'is', null), eb('relay_until', '<', at)]))
      .returning(['published_seq', 'seq']),
);

/** Moves the watermark and lets the lease go (after the last batch). */
const releaseQuery = new HotQuery<[number, string, string], Head>(
  (db, upTo: number, streamKey: string, owner: string) =>
    (db as Db)
      .updateTable('pulse_streams')
      .set({ published_seq: upTo, relay_owner: null, relay_until: null })
      .where('stream_key', '=', streamKey)
      .where('relay_owner', '=', owner)
      .returning(['published_seq', 'seq']),
);

/** Moves the watermark and renews the lease (more batches to go). */
const renewQuery = new HotQuery<[number, number, string, string], Head>(
  (db, upTo: number, until: number, streamKey: string, owner: string) =>
    (db as Db)
      .updateTable('pulse_streams')
      .set({ published_seq: upTo, relay_until: until })
      .where('stream_key', '=', streamKey)
      .where('relay_owner', '=', owner)
      .returning(['published_seq', 'seq']),
);

/**
 * The outbox relay: publishes every committed event of a stream, in id order, exactly past the
 * stream's `published_seq` watermark (`pulse_streams`).
 *
 * A node first claims a stream with a conditional UPDATE (a lease: `relay_owner`, `relay_until`);
 * only the holder publishes, then moves the watermark and renews or releases the lease, each its
 * own short statement, so no row lock is held while it publishes. A write publishes its own events
 * right after commit through this path, having taken the claim inside its own transaction
 * (`claimWithin`: the same conditional UPDATE, committed with the events, so a write that rolls back
 * holds no lease); every node also polls (one indexed query per interval, over
 * streams with unpublished events only), so an event whose writer died between commit and publish
 * goes out within `pollMs` (plus `leaseMs` if it died holding the lease), without a later write.
 * A holder that dies mid-batch can make the next one publish some events twice: subscribers drop
 * ids they already have.
 */
export class StreamRelay {
  private readonly states = new Map<string, RelayState>();
  private readonly poller: NodeJS.Timeout | undefined;
  private polling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: StreamRelayOptions) {
    if (opts.pollMs > 0) {
      this.poller = setInterval(() => {
        if (this.polling || this.closed) return;
        this.polling = this.poll()
          .catch((error: unknown) => opts.onError(error, 'stream relay poll'))
          .finally(() => {
            this.polling = null;
          });
      }, opts.pollMs);
      this.poller.unref();
    }
  }

  /**
   * Publishes every committed, unpublished event of the stream (`local`: events this node just
   * committed, published from memory when they are exactly what is due). Calls made while a run is
   * under way share one follow-up run, which starts after it (and so sees their commits). Never
   * rejects: failures are reported, and the events stay due for the next run or poll.
   */
  publish(streamKey: string, local: AppendedEvent[] = [], claimed?: RelayClaim): Promise<void> {
    let state = this.states.get(streamKey);
    if (!state) {
      state = { running: null, queued: null, claimed: null, local: new Map() };
      this.states.set(streamKey, state);
    }
    const current = state;
    for (const event of local) current.local.set(event.seq, event);
    if (claimed) current.claimed = claimed;
    if (current.queued) return current.queued;
    const start = (): Promise<void> => {
      const run = this.run(streamKey, current)
        .catch((error: unknown) => this.opts.onError(error, `stream relay ${streamKey}`))
        .finally(() => {
          current.running = null;
          if (!current.queued && this.states.get(streamKey) === current) this.states.delete(streamKey);
        });
      current.running = run;
      return run;
    };
    if (!current.running) return start();
    current.queued = current.running.then(() => {
      current.queued = null;
      return start();
    });
    return current.queued;
  }

  /**
   * Takes the stream's lease inside a writer's transaction, after its appends and before its commit
   * (the claim `run` would make right after the commit, without a statement of its own: on SQLite
   * one write less per durable write). A claim is taken only where `run` would take it (unpublished
   * events, no live lease); it commits or rolls back with the write. Pass what it returns to
   * `publish` after the commit; undefined (another holder) leaves the events to the holder.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a transaction of any domain's tables
  async claimWithin(trx: Kysely<any>, streamKey: string): Promise<RelayClaim | undefined> {
    const at = Date.now();
    const [claim] = (await claimQuery.execute(trx, this.opts.owner, at + this.opts.leaseMs, streamKey, at))
      .rows;
    return claim ? { from: Number(claim.published_seq), to: Number(claim.seq) } : undefined;
  }

  /** One poll: every stream with committed, unpublished events, published by whoever claims it. */
  async poll(): Promise<void> {
    const due = await this.opts.db
      .selectFrom('pulse_streams')
      .select('stream_key')
      .where((eb) => eb('published_seq', '<', eb.ref('seq')))
      // NOTE: the ORDER BY makes PostgreSQL read the partial index (an index-only scan of the few
      // unpublished streams) instead of scanning the table, which it prefers for a bare LIMIT.
      .orderBy('stream_key')
      .limit(100)
      .execute();
    for (const { stream_key } of due) {
      if (this.closed) return;
      if (this.opts.resolve(stream_key)) await this.publish(stream_key);
    }
  }

  /** Stops polling and waits for runs under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    await this.polling;
    await Promise.all([...this.states.values()].map((s) => s.queued ?? s.running));
  }

  private async run(streamKey: string, state: RelayState): Promise<void> {
    const stream = this.opts.resolve(streamKey);
    if (!stream) return;
    const { db, owner, leaseMs, hub } = this.opts;
    for (;;) {
      const at = Date.now();
      // NOTE: the claim. Only a stream with unpublished events and no live lease is taken; a node
      // that loses this race leaves its events to the holder, which loops until nothing is due.
      let claim = state.claimed;
      state.claimed = null;
      if (!claim) {
        const [row] = (await claimQuery.execute(db, owner, at + leaseMs, streamKey, at)).rows;
        if (!row) return;
        claim = { from: Number(row.published_seq), to: Number(row.seq) };
      }
      let from = claim.from;
      const to = claim.to;
      while (from < to) {
        const upTo = Math.min(to, from + BATCH);
        const events = await this.due(stream, streamKey, state, from, upTo);
        for (const event of events) await hub.publish(event.topic, event.data, String(event.seq), event.json);
        const last = upTo === to;
        // Moves the watermark; renews the lease, or lets it go after the last batch (one statement).
        const [moved] = (
          last
            ? await releaseQuery.execute(db, upTo, streamKey, owner)
            : await renewQuery.execute(db, upTo, Date.now() + leaseMs, streamKey, owner)
        ).rows;
        for (let seq = from + 1; seq <= upTo; seq += 1) state.local.delete(seq);
        // The lease ran out and another node took over: it publishes the rest.
        if (!moved) return;
        // Commits that landed while this node held the lease: their writers left them to it.
        if (last && Number(moved.seq) <= Number(moved.published_seq)) return;
        from = upTo;
      }
    }
  }

  /** Events (from, to]: from memory when this node appended all of them, else from the store. */
  private async due(
    stream: DurableStream<DurableEvent>,
    streamKey: string,
    state: RelayState,
    from: number,
    to: number,
  ): Promise<AppendedEvent[]> {
    const events: AppendedEvent[] = [];
    for (let seq = from + 1; seq <= to; seq += 1) {
      const event = state.local.get(seq);
      if (!event) return stream.committed(streamKey, from, to);
      events.push(event);
    }
    return events;
  }
}
