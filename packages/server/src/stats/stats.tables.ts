import type { Migration } from 'kysely';

/** The stats domain's table, for typed queries. */
export type NodeStatsTable = {
  pulse_node_stats: { node_id: string; report: string; updated_at: number };
};

/** The table where nodes leave their reports (one row per node). */
export const statsMigrations: Record<string, Migration> = {
  '0900_node_stats': {
    async up(db) {
      await db.schema
        .createTable('pulse_node_stats')
        .ifNotExists()
        .addColumn('node_id', 'varchar(200)', (c) => c.primaryKey())
        .addColumn('report', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};
