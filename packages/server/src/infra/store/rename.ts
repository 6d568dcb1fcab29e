import { type Kysely, PostgresAdapter, sql } from 'kysely';

/** One table to rename in a migration: `from` → `to`. */
export interface TableRename {
  from: string;
  to: string;
}

/**
 * Renames tables inside a migration, atomically, on both engines. PostgreSQL: the migrator already
 * runs the migration in a transaction; the tables' indexes (and so the primary key / unique
 * constraints they back) and owned sequences whose names start with `<from>_` are renamed to
 * `<to>_…` too. SQLite: one `begin immediate` … `commit` (the migrator runs SQLite migrations
 * outside a transaction); SQLite cannot rename an index, so its indexes keep their old names
 * (harmless: queries never name them).
 */
// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists
export async function renameTables(db: Kysely<any>, renames: readonly TableRename[]): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    for (const { from, to } of renames) {
      await sql`alter table ${sql.id(from)} rename to ${sql.id(to)}`.execute(db);
      const owned = await sql<{ name: string; kind: string }>`
        select c.relname as name, c.relkind as kind from pg_index x
          join pg_class c on c.oid = x.indexrelid
          where x.indrelid = ${to}::regclass
        union
        select c.relname as name, c.relkind as kind from pg_depend d
          join pg_class c on c.oid = d.objid
          where d.refobjid = ${to}::regclass and d.deptype in ('a', 'i') and c.relkind = 'S'`.execute(db);
      for (const { name, kind } of owned.rows) {
        if (!name.startsWith(`${from}_`)) continue;
        const renamed = `${to}${name.slice(from.length)}`;
        // NOTE: renaming the index of a primary key / unique constraint renames the constraint too.
        if (kind === 'S') await sql`alter sequence ${sql.id(name)} rename to ${sql.id(renamed)}`.execute(db);
        else await sql`alter index ${sql.id(name)} rename to ${sql.id(renamed)}`.execute(db);
      }
    }
    return;
  }
  await sql`begin immediate`.execute(db);
  try {
    for (const { from, to } of renames)
      await sql`alter table ${sql.id(from)} rename to ${sql.id(to)}`.execute(db);
    await sql`commit`.execute(db);
  } catch (error) {
    await sql`rollback`.execute(db);
    throw error;
  }
}
