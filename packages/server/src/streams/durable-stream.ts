import { type TrackedEnvelope, TRPCError } from '@trpc/server';
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Hub } from '../infra/hub.js';
import { GatherBatch } from '../infra/read-batch.js';
import { HotQuery } from '../infra/store/hot-query.js';
import { type LiveItem, type LiveStream, liveDurable } from '../infra/live.js';
import { type DurableEvent, type StreamControlEvent, streamEventIdSchema } from './stream.schema.js';

// biome-ignore lint/suspicious/noExplicitAny: the kernel works on tables it only knows by name
type AnyDb = Kysely<any>;
// biome-ignore lint/suspicious/noExplicitAny: a transaction of any domain's tables
export type AnyTransaction = Transaction<any>;

/**
 * Where a durable stream keeps its event log. The default (`pulse_stream_events`) suits any new
 * domain; notifications and inbox name their existing tables so stored streams stay as they are.
 */
export interface StreamEventTable {
  table: string;
  /** Column that tells streams apart. */
  keyColumn: string;
  /** What it holds: the full stream key (`<name>:<workspaceId>`) or only the workspace id. */
  keyValue: 'stream' | 'workspace';
  /** Column of the event's recipient (null = every subscriber). */
  recipientColumn: string;
  /** Column of the event's JSON. */
  payloadColumn: string;
}

/** The kernel's own event log table. */
export const defaultEventTable: StreamEventTable = {
  table: 'pulse_stream_events',
  keyColumn: 'stream_key',
  keyValue: 'stream',
  recipientColumn: 'recipient',
  payloadColumn: 'payload',
};

/** What a durable domain declares: its name (the topic prefix), retention and who may see an event. */
export interface DurableStreamSpec<E extends DurableEvent> {
  /** Topic and stream key prefix: the stream of a workspace is `<name>:<workspaceId>`. */
  name: string;
  /** Events kept per workspace stream for replay; an older resume point gets a `reset`. */
  retention: number;
  /**
   * The only subscriber filter value that may see `event` (a user id, a conversation id…), or null
   * for every subscriber. Stored beside the event, so replays filter in SQL with the same rule.
   */
  recipientOf?: (event: E) => string | null;
  /** Defaults to `pulse_stream_events`. */
  table?: StreamEventTable;
}

/** One event appended by a transaction, kept until it is published after commit. */
export interface AppendedEvent {
  streamKey: string;
  topic: string;
  seq: number;
  /** The stored JSON: the bus and every socket reuse it (serialised once). */
  json: string;
  data: unknown;
}

/** What a durable stream needs from its kernel. */
export interface StreamHost {
  readonly db: AnyDb;
  readonly hub: Hub;
  /** Remembers an event appended inside `trx`, to publish it once `trx` commits. */
  appended(trx: AnyTransaction, event: AppendedEvent): void;
  /** Allocates the next id of a stream inside `trx` (shared per stream within a commit group). */
  nextSeq(trx: AnyTransaction, streamKey: string): Promise<number>;
}

/** Which events of a stream one subscriber sees. */
export interface StreamFilter {
  /** Only events addressed to this recipient (or to everyone); undefined = every event. */
  recipient?: string;
}

const now = () => new Date().toISOString();

/** Recipients of one shared replay filtered in SQL; past it the read takes the window and filters in memory. */
const SQL_RECIPIENTS = 50;

/** One subscriber's replay in a shared read. */
interface ReplayRequest {
  afterId: string | undefined;
  recipient: string | undefined;
  onHead: ((headId: string) => void) | undefined;
}

/** One subscriber's replay, or its own error (a resume point ahead of the head). */
type ReplayResult<E> = Array<LiveItem<E | StreamControlEvent>> | TRPCError;

/**
 * One durable domain's streams (one per workspace): gap-free ids allocated in the writer's
 * transaction, the event stored once as JSON, replay with `sync` / `reset`, the live tail from the
 * hub. Built by `StreamKernel.define`; publication after commit is the kernel's relay.
 */
export class DurableStream<E extends DurableEvent> {
  private readonly table: StreamEventTable;
  /** Replays asked for together, per workspace stream: one shared read (see `replay`). */
  private readonly replays = new GatherBatch<ReplayRequest, ReplayResult<E>>();
  /** Every append's insert and retention prune (hot statements: built and compiled once). */
  private readonly insertEvent: HotQuery<[unknown, number, string | null, string]>;
  private readonly pruneEvents: HotQuery<[unknown, number]>;

  constructor(
    private readonly host: StreamHost,
    readonly spec: DurableStreamSpec<E>,
  ) {
    const table = spec.table ?? defaultEventTable;
    this.table = table;
    const { keyColumn, recipientColumn, payloadColumn } = table;
    this.insertEvent = new HotQuery((db, key: unknown, seq: number, recipient: string | null, json: string) =>
      db
        .insertInto(table.table)
        .values({ [keyColumn]: key, seq, [recipientColumn]: recipient, [payloadColumn]: json }),
    );
    this.pruneEvents = new HotQuery((db, key: unknown, floor: number) =>
      db.deleteFrom(table.table).where(keyColumn, '=', key).where('seq', '<=', floor),
    );
  }

  /** The name of this domain's streams. */
  get name(): string {
    return this.spec.name;
  }

  /** Hub topic and stream key of a workspace's stream. */
  topic(workspaceId: string): string {
    return `${this.spec.name}:${workspaceId}`;
  }

  /**
   * Allocates the next id of the workspace's stream inside `trx` (for rows that carry the id of the
   * event that delivers them); pass it to `append` as `seq`.
   */
  nextId(trx: AnyTransaction, workspaceId: string): Promise<number> {
    return this.host.nextSeq(trx, this.topic(workspaceId));
  }

  /**
   * Appends one event inside the caller's transaction: allocates its id (or takes `opts.seq` from
   * `nextId`), stores its JSON, prunes what fell out of the retention window. It is published once
   * the transaction commits (`StreamKernel.transaction`), or by the relay of any node.
   */
  async append(
    trx: AnyTransaction,
    workspaceId: string,
    event: E,
    opts: { seq?: number; recipient?: string | null } = {},
  ): Promise<{ id: string; seq: number }> {
    const streamKey = this.topic(workspaceId);
    const seq = opts.seq ?? (await this.host.nextSeq(trx, streamKey));
    const recipient =
      opts.recipient !== undefined ? opts.recipient : (this.spec.recipientOf?.(event) ?? null);
    const json = JSON.stringify(event);
    const key = this.keyOf(workspaceId);
    await this.insertEvent.execute(trx, key, seq, recipient, json);
    const floor = seq - this.spec.retention;
    if (floor > 0) await this.pruneEvents.execute(trx, key, floor);
    this.host.appended(trx, { streamKey, topic: streamKey, seq, json, data: event });
    return { id: String(seq), seq };
  }

  /**
   * The stream's newest committed id ("0" before the first event), read on `db` (default the
   * kernel's store; pass a read transaction to read it in the same snapshot as other rows, see
   * `readSnapshot`). Not inside a group commit's write: its ids are stored only before commit.
   */
  async head(workspaceId: string, db: AnyDb = this.host.db): Promise<string> {
    const row = await db
      .selectFrom('pulse_streams')
      .select('seq')
      .where('stream_key', '=', this.topic(workspaceId))
      .executeTakeFirst();
    return String(row ? Number(row.seq) : 0);
  }

  /**
   * The head as a scalar subquery, for a read that returns rows and the position they were read at
   * in one statement (one snapshot on both engines, also under READ COMMITTED).
   */
  headExpression(workspaceId: string): RawBuilder<number | string> {
    return sql<
      number | string
    >`coalesce((select seq from pulse_streams where stream_key = ${this.topic(workspaceId)}), 0)`;
  }

  /**
   * What a subscriber resuming after `afterId` gets first: without a resume point a `sync` at the
   * head; at the head nothing; within the retention window every retained event it may see, in
   * order; past it one `reset` at the head. A resume point ahead of the head is a BAD_REQUEST.
   *
   * Replays of one stream asked for together share one store read (`GatherBatch`: the requests of a
   * turn, or of the time a previous read of the stream ran): one head read, one oldest-id read and
   * one read of the events after the lowest resume point among them; each subscriber gets its own
   * slice (ids past its `afterId`, its recipient's events). A replay never joins a read in flight.
   */
  replay(
    workspaceId: string,
    afterId: string | undefined,
    filter: StreamFilter = {},
    /** Told the head as soon as it is read (a subscriber's hub baseline, see `Hub.observeHead`). */
    onHead?: (headId: string) => void,
  ): Promise<Array<LiveItem<E | StreamControlEvent>>> {
    const request: ReplayRequest = { afterId, recipient: filter.recipient, onHead };
    return this.replays
      .get(workspaceId, request, (requests) => this.replayMany(workspaceId, requests))
      .then((result) => {
        if (result instanceof TRPCError) throw result;
        return result;
      });
  }

  /** One shared read for the replays of a workspace's stream gathered in one batch (see `replay`). */
  private async replayMany(workspaceId: string, requests: ReplayRequest[]): Promise<Array<ReplayResult<E>>> {
    const headId = await this.head(workspaceId);
    for (const request of requests) request.onHead?.(headId);
    const head = Number(headId);
    const results: Array<ReplayResult<E> | undefined> = requests.map((request) => {
      if (request.afterId === undefined) {
        // NOTE: without a resume point the client would have none until its first event, and a drop
        // before it would lose what came meanwhile: hand it the head as its resume point.
        return [{ id: headId, data: { type: 'sync', workspaceId, at: now(), headId } }];
      }
      const after = Number(request.afterId);
      if (after > head) {
        // NOTE: a reset cannot move a resume point back (transports drop ids at or below it).
        return new TRPCError({
          code: 'BAD_REQUEST',
          message: `lastEventId ${request.afterId} is ahead of this stream (head ${head}); subscribe without it`,
        });
      }
      if (after === head) return [];
      return undefined;
    });
    const behind = results.flatMap((result, i) => (result === undefined ? [i] : []));
    if (behind.length === 0) return results as Array<ReplayResult<E>>;
    const { table, keyColumn, recipientColumn, payloadColumn } = this.table;
    const key = this.keyOf(workspaceId);
    const readOldest = async () => {
      const oldest = await this.host.db
        .selectFrom(table)
        .select((eb) => eb.fn.min('seq').as('seq'))
        .where(keyColumn, '=', key)
        .executeTakeFirst();
      return oldest?.seq == null ? undefined : Number(oldest.seq);
    };
    const oldestSeq = await readOldest();
    const reading: number[] = [];
    for (const i of behind) {
      const after = Number(requests[i]?.afterId);
      if (oldestSeq === undefined || oldestSeq > after + 1) {
        results[i] = [{ id: headId, data: { type: 'reset', workspaceId, at: now(), headId } }];
      } else reading.push(i);
    }
    if (reading.length === 0) return results as Array<ReplayResult<E>>;
    // NOTE: a loop, not Math.min(...spread): a storm's batch may hold tens of thousands.
    let from = Number.POSITIVE_INFINITY;
    for (const i of reading) from = Math.min(from, Number(requests[i]?.afterId));
    // NOTE: the oldest kept id is read again in the same statement (one snapshot): a writer may have
    // pruned the window between the check above and this read, and a subscriber whose next id went
    // meanwhile gets a `reset`, not a replay with a hole at its start (a race the old per-subscriber
    // replay had too; notifications.shared-replay.test.ts caught it on PostgreSQL).
    let query = this.host.db
      .selectFrom(table)
      .select([
        'seq',
        `${payloadColumn} as payload`,
        `${recipientColumn} as recipient`,
        sql<
          number | string | null
        >`(select min(seq) from ${sql.table(table)} where ${sql.ref(keyColumn)} = ${key})`.as('oldest'),
      ])
      .where(keyColumn, '=', key)
      .where('seq', '>', from);
    // NOTE: a few recipients are filtered in SQL (the single subscriber reads only its events);
    // many, or one subscriber of every event, read the window (at most `retention` rows) and
    // filter below.
    const recipients = new Set<string>();
    let everyone = false;
    for (const i of reading) {
      const recipient = requests[i]?.recipient;
      if (recipient === undefined) everyone = true;
      else recipients.add(recipient);
    }
    if (!everyone && recipients.size <= SQL_RECIPIENTS) {
      const list = [...recipients];
      query = query.where((eb) => eb.or([eb(recipientColumn, 'is', null), eb(recipientColumn, 'in', list)]));
    }
    const rows = await query.orderBy('seq').execute();
    const first = rows[0];
    // No row: read the oldest id on its own (nothing was replayed, so no hole can hide in it).
    const oldestNow = first ? (first.oldest == null ? undefined : Number(first.oldest)) : await readOldest();
    const items = rows.map((row) => ({
      seq: Number(row.seq),
      recipient: (row.recipient ?? null) as string | null,
      item: new StoredItem<E>(String(row.seq), row.payload as string),
    }));
    for (const i of reading) {
      const request = requests[i] as ReplayRequest;
      const after = Number(request.afterId);
      if (oldestNow === undefined || oldestNow > after + 1) {
        results[i] = [{ id: headId, data: { type: 'reset', workspaceId, at: now(), headId } }];
        continue;
      }
      const { recipient } = request;
      results[i] = items
        .filter(
          (row) =>
            row.seq > after &&
            (recipient === undefined || row.recipient === null || row.recipient === recipient),
        )
        .map((row) => row.item);
    }
    return results as Array<ReplayResult<E>>;
  }

  /**
   * A subscriber's live stream: replay after `lastEventId` (see `replay`), then live events it may
   * see, each `tracked(id, event)`. An invalid `lastEventId` is a BAD_REQUEST.
   */
  subscribe(opts: {
    workspaceId: string;
    lastEventId?: string | null;
    filter?: StreamFilter;
    signal?: AbortSignal;
  }): LiveStream<TrackedEnvelope<E | StreamControlEvent>> {
    const { workspaceId } = opts;
    const lastEventId = opts.lastEventId ?? undefined;
    if (lastEventId !== undefined && !streamEventIdSchema.safeParse(lastEventId).success) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: 'lastEventId must be an event id from this stream',
      });
    }
    const filter = opts.filter ?? {};
    const recipient = filter.recipient;
    const recipientOf = this.spec.recipientOf;
    return liveDurable<E | StreamControlEvent>(this.host.hub, {
      topic: this.topic(workspaceId),
      // NOTE: the same rule as the replay's SQL: the kernel's own events and events for everyone pass.
      filter:
        recipient === undefined || !recipientOf
          ? undefined
          : (event) => {
              if (event.type === 'sync' || event.type === 'reset') return true;
              const to = recipientOf(event as E);
              return to === null || to === recipient;
            },
      initial: (afterId, onHead) => this.replay(workspaceId, afterId, filter, onHead),
      lastEventId,
      signal: opts.signal,
    });
  }

  /** Committed events of a stream with ids in (from, to], in order (the relay's read). */
  async committed(streamKey: string, from: number, to: number): Promise<AppendedEvent[]> {
    const { table, keyColumn, payloadColumn } = this.table;
    const workspaceId = streamKey.slice(this.spec.name.length + 1);
    const rows = await this.host.db
      .selectFrom(table)
      .select(['seq', `${payloadColumn} as payload`])
      .where(keyColumn, '=', this.keyOf(workspaceId))
      .where('seq', '>', from)
      .where('seq', '<=', to)
      .orderBy('seq')
      .execute();
    return rows.map((row) => {
      const json = row.payload as string;
      return { streamKey, topic: streamKey, seq: Number(row.seq), json, data: JSON.parse(json) };
    });
  }

  private keyOf(workspaceId: string): string {
    return this.table.keyValue === 'stream' ? this.topic(workspaceId) : workspaceId;
  }
}

/**
 * A replayed event as read from the store: its JSON goes to a socket as stored (`LiveItem.json`)
 * and is parsed only when something reads `data` (a filter, the generic iterator).
 */
class StoredItem<E> implements LiveItem<E> {
  private parsed: E | undefined;
  constructor(
    readonly id: string,
    readonly json: string,
  ) {}
  get data(): E {
    if (this.parsed === undefined) this.parsed = JSON.parse(this.json) as E;
    return this.parsed;
  }
}
