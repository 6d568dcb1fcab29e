import { type Kysely, type Migration, sql } from 'kysely';
import { HotQuery } from '../infra/store/hot-query.js';

/** Stream sequence numbers: `bigint` comes back as a string from PostgreSQL, a number from SQLite. */
type Seq = number | string;

/**
 * The durable-stream kernel's tables (`src/streams/`), declared once. `pulse_streams` holds one row
 * per stream: its head (`seq`, allocated by `nextSeq` inside the writing transaction), its
 * publication watermark and the relay lease. `pulse_stream_events` is the default event log of a
 * durable stream (notifications and inbox keep their own, older tables). A type, not an interface:
 * `withTables` wants an index signature.
 */
export type StreamTables = {
  pulse_streams: {
    stream_key: string;
    /** Newest allocated id (gap-free, strictly increasing; commit order == id order). */
    seq: Seq;
    /** Every committed event up to here is on the bus. */
    published_seq: Seq;
    /** Node that holds the relay lease, or null. */
    relay_owner: string | null;
    /** Epoch ms the lease runs out (another node may take over after it). */
    relay_until: Seq | null;
  };
  pulse_stream_events: {
    stream_key: string;
    seq: Seq;
    /** null = every subscriber of the stream; otherwise the only one whose filter names it. */
    recipient: string | null;
    /** The event's JSON, exactly as published. */
    payload: string;
  };
};

export const streamMigrations: Record<string, Migration> = {
  '0000_streams': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('pulse_streams')
        .ifNotExists()
        .addColumn('stream_key', 'text', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '1010_stream_outbox': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('pulse_streams')
        .addColumn('published_seq', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('pulse_streams').addColumn('relay_owner', 'text').execute();
      await db.schema.alterTable('pulse_streams').addColumn('relay_until', 'bigint').execute();
      // NOTE: events committed before this migration were published by the code that wrote them (or
      // were waiting for the next write): count them as published rather than replay old ids to the bus.
      await sql`update pulse_streams set published_seq = seq`.execute(db);
      // The relay's poll reads only streams with unpublished events: a partial index keeps it one
      // cheap lookup however many streams exist.
      await sql`create index if not exists pulse_streams_unpublished on pulse_streams (stream_key)
        where published_seq < seq`.execute(db);
      await db.schema
        .createTable('pulse_stream_events')
        .ifNotExists()
        .addColumn('stream_key', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('recipient', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pulse_stream_events_pk', ['stream_key', 'seq'])
        .execute();
    },
  },
};

const nextSeqQuery = new HotQuery(
  (_db, streamKey: string) => sql<{ seq: number | string }>`
    insert into pulse_streams (stream_key, seq) values (${streamKey}, 1)
    on conflict (stream_key) do update set seq = pulse_streams.seq + 1
    returning seq`,
);

/**
 * Allocates the next id of a stream. Runs inside the transaction that writes the event: on
 * PostgreSQL the upsert takes the stream's row lock until commit, so concurrent writers on several
 * nodes commit in id order and ids are gap-free and strictly increasing (SQLite serialises writers).
 */
// biome-ignore lint/suspicious/noExplicitAny: works on any Kysely/transaction whatever its tables
export async function nextSeq(db: Kysely<any>, streamKey: string): Promise<number> {
  const row = await nextSeqQuery.execute(db, streamKey);
  const seq = row.rows[0]?.seq;
  if (seq === undefined) throw new Error(`No sequence returned for stream ${streamKey}`);
  return Number(seq);
}
