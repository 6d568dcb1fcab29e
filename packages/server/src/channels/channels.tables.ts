import { type Kysely, type Migration, sql } from 'kysely';

/**
 * The idempotency keys of durable channel publishes: one row per (stream, sender, key), pruned with
 * the stream's retention window (a key older than the window may be used again).
 */
export type ChannelTables = {
  pulse_channel_publishes: {
    stream_key: string;
    /** `user:<id>`, `service:<name>` or `system` (server code): keys are scoped per sender. */
    sender: string;
    idempotency_key: string;
    /** The id of the event the key published. */
    seq: number | string;
  };
};

export const channelMigrations: Record<string, Migration> = {
  '1600_channel_publishes': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('pulse_channel_publishes')
        .ifNotExists()
        .addColumn('stream_key', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pulse_channel_publishes_pk', ['stream_key', 'sender', 'idempotency_key'])
        .execute();
      // Retention prunes by (stream, seq).
      await sql`create index if not exists pulse_channel_publishes_seq on pulse_channel_publishes (stream_key, seq)`.execute(
        db,
      );
    },
  },
};
