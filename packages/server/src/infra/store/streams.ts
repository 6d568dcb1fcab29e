import { type Kysely, type Migration, sql } from 'kysely';

/**
 * Per-stream sequence numbers for durable events. `nextSeq` runs inside the transaction that writes
 * the event: on PostgreSQL the upsert takes the stream's row lock until commit, so concurrent
 * writers on several nodes commit in sequence order and ids are gap-free and strictly increasing.
 */
export interface StreamTables {
  pulse_streams: { stream_key: string; seq: number | string };
}

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
};

// biome-ignore lint/suspicious/noExplicitAny: works on any Kysely/transaction whatever its tables
export async function nextSeq(db: Kysely<any>, streamKey: string): Promise<number> {
  const row = await sql<{ seq: number | string }>`
    insert into pulse_streams (stream_key, seq) values (${streamKey}, 1)
    on conflict (stream_key) do update set seq = pulse_streams.seq + 1
    returning seq`.execute(db);
  const seq = row.rows[0]?.seq;
  if (seq === undefined) throw new Error(`No sequence returned for stream ${streamKey}`);
  return Number(seq);
}
