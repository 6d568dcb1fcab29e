import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresUnavailable } from '../../../test/support/stores.js';
import { createStore, type Store } from './db.js';
import { HotQuery } from './hot-query.js';

const unavailable = await postgresUnavailable();

type Tables = { hot_rows: { k: string; n: number; note: string | null } };

const insert = new HotQuery((db, k: string, n: number, note: string | null) =>
  (db as Kysely<Tables>).insertInto('hot_rows').values({ k, n, note }),
);
const byKeys = new HotQuery((db, a: string, b: string) =>
  (db as Kysely<Tables>)
    .selectFrom('hot_rows')
    .select(['k', 'n', 'note'])
    .where('k', 'in', [a, b])
    .orderBy('k'),
);
const bump = new HotQuery(
  (_db, k: string) => sql<{ n: number }>`update hot_rows set n = n + 1 where k = ${k} returning n`,
);

describe.each([
  ['SQLite', false],
  ['PostgreSQL', true],
] as const)('HotQuery on %s', (_name, postgres) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (postgres) {
      if (unavailable) return;
      const database = await createTestDatabase();
      drop = database.drop;
      store = createStore({ databaseUrl: database.url });
    } else {
      store = createStore({ sqliteFile: ':memory:' });
    }
    await sql`create table hot_rows (k text primary key, n integer not null, note text)`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
  });

  it.skipIf(postgres && unavailable)(
    'binds each run’s arguments into the statement compiled once, in and out of a transaction',
    async () => {
      const db = store.db.withTables<Tables>();
      await insert.execute(db, 'a', 1, null);
      await db.transaction().execute(async (trx) => {
        await insert.execute(trx, 'b', 2, 'two');
        await insert.execute(trx, 'c', 3, null);
      });
      const { rows } = await byKeys.execute(db, 'c', 'a');
      expect(rows).toEqual([
        { k: 'a', n: 1, note: null },
        { k: 'c', n: 3, note: null },
      ]);
      expect((await byKeys.execute(db, 'b', 'zz')).rows).toEqual([{ k: 'b', n: 2, note: 'two' }]);
      const bumped = await bump.execute(db, 'b');
      expect(bumped.rows.map((r) => Number(r.n))).toEqual([3]);
      // A failing run rolls back like any statement and leaves the kept statement usable.
      await expect(
        db.transaction().execute(async (trx) => {
          await insert.execute(trx, 'd', 4, null);
          await insert.execute(trx, 'd', 5, null);
        }),
      ).rejects.toThrow(/unique|duplicate/i);
      expect((await byKeys.execute(db, 'd', 'a')).rows.map((r) => r.k)).toEqual(['a']);
    },
  );

  it.skipIf(postgres && unavailable)('refuses a statement that does not bind every argument', async () => {
    const unbound = new HotQuery((db, k: string, _unused: number) =>
      (db as Kysely<Tables>).selectFrom('hot_rows').select('k').where('k', '=', k),
    );
    await expect(unbound.execute(store.db, 'a', 1)).rejects.toThrow(
      /HotQuery: 1 of 2 arguments are not parameters/,
    );
  });
});
