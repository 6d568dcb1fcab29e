/**
 * `npm run bench:sqlite -w @pulse/bench`: better-sqlite3 (the compiled addon the embedded store uses)
 * beside Node's built-in `node:sqlite` (`DatabaseSync`, Node ≥ 22.13), in one process on one Node
 * binary, on the shape of Pulse's durable write path and of its list query. Not part of `npm test`.
 *
 * One send = one transaction, as `notifications.send` does it: bump the stream's counter
 * (`insert … on conflict … do update set seq = seq + 1 returning seq`), insert the notification
 * (`on conflict do nothing returning id`, the idempotency guard), insert the stream event with its
 * JSON payload, prune the events past the retention window, commit. The list query is the
 * service's: the 50 (+1) newest notifications a user sees, with their read state, by the
 * (workspace_id, seq) index. Tables, indexes and pragmas are the store's (WAL, synchronous=NORMAL),
 * a file in a temp dir.
 *
 * Two ways to drive each engine:
 * - `prepared`: statements prepared once, explicit begin/commit — what the engine itself costs;
 * - `kysely`: Kysely 0.28's SqliteDialect, as the store runs today (every query compiled and
 *   prepared anew, async). Kysely has no node:sqlite dialect, so node:sqlite goes through the small
 *   adapter below (`kyselyDatabase`), which is what a store on node:sqlite would need;
 * - `kysely-cached`: the same with prepared statements kept by SQL text (`cachedStatements`), for
 *   both engines — what such an adapter could add.
 *
 * Wall-clock sends/s move with the machine's load; CPU µs per send (the process's user + system
 * time over the same sends) is the steadier figure on a shared machine.
 *
 * Settings: SENDS (per driver per round, default 10000), ROUNDS (3; the order of drivers alternates),
 * LIST_QUERIES (per round, 2000), MODES (`prepared,kysely,kysely-cached`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, type SqliteDatabase, SqliteDialect, sql } from 'kysely';

const SENDS = Number(process.env.SENDS ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const LIST_QUERIES = Number(process.env.LIST_QUERIES ?? 2_000);
const MODES = (process.env.MODES ?? 'prepared,kysely,kysely-cached').split(',') as Mode[];
const RETENTION = 500; // PULSE_NOTIFICATION_RETENTION's default
const USERS = 20;
const WORKSPACE = 'acme';
const STREAM = `notifications:${WORKSPACE}`;

type Mode = 'prepared' | 'kysely' | 'kysely-cached';
type DriverName = 'better-sqlite3' | 'node:sqlite';
type Param = string | number | null;

/** The part of both engines' synchronous API the bench uses (they agree on it). */
interface SyncStatement {
  run(...params: Param[]): unknown;
  get(...params: Param[]): unknown;
  all(...params: Param[]): unknown[];
}
interface SyncDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): SyncStatement;
  close(): void;
}

/** `node:sqlite`'s surface used here (this repo's @types/node is 20's, which has no node:sqlite). */
interface NodeSqliteStatement extends SyncStatement {
  columns(): unknown[];
  iterate(...params: Param[]): IterableIterator<unknown>;
}
interface NodeSqliteDatabase extends SyncDatabase {
  prepare(sql: string): NodeSqliteStatement;
}
type NodeSqliteModule = { DatabaseSync: new (path: string) => NodeSqliteDatabase };

const nodeSqlite = await loadNodeSqlite();

/** null on Node 20 (no node:sqlite): then only better-sqlite3 runs, for figures beside the newer lines. */
async function loadNodeSqlite(): Promise<NodeSqliteModule | null> {
  const specifier = 'node:sqlite';
  try {
    return (await import(specifier)) as NodeSqliteModule;
  } catch (error) {
    console.error(`node:sqlite is not available in Node ${process.version} (needs ≥ 22.13): ${error}`);
    console.error('running better-sqlite3 alone');
    return null;
  }
}

function openNodeSqlite(path: string): NodeSqliteDatabase {
  if (!nodeSqlite) throw new Error('node:sqlite is not available');
  return new nodeSqlite.DatabaseSync(path);
}

function open(driver: DriverName, path: string): SyncDatabase {
  const db: SyncDatabase =
    driver === 'better-sqlite3' ? (new SQLite(path) as unknown as SyncDatabase) : openNodeSqlite(path);
  // The store's pragmas (packages/server/src/infra/store/db.ts).
  db.exec('pragma journal_mode = WAL');
  db.exec('pragma synchronous = NORMAL');
  db.exec('pragma busy_timeout = 5000');
  db.exec('pragma foreign_keys = ON');
  // The store's tables and indexes (streams + notifications migrations), as they are created there.
  db.exec(`
    create table pulse_streams (stream_key text primary key, seq bigint not null);
    create table pulse_notifications (
      id text primary key, workspace_id text not null, seq bigint not null, user_id text,
      type text not null, title text not null, body text, data text not null, priority text not null,
      idempotency_key text, created_at text not null,
      constraint pulse_notifications_ws_seq unique (workspace_id, seq),
      constraint pulse_notifications_ws_key unique (workspace_id, idempotency_key));
    create table pulse_notification_reads (
      notification_id text not null references pulse_notifications (id) on delete cascade,
      user_id text not null, workspace_id text not null, read_at text not null,
      constraint pulse_notification_reads_pk primary key (notification_id, user_id));
    create index pulse_notification_reads_user on pulse_notification_reads (workspace_id, user_id);
    create table pulse_notification_events (
      workspace_id text not null, seq bigint not null, recipient text, payload text not null,
      constraint pulse_notification_events_pk primary key (workspace_id, seq));`);
  return db;
}

/**
 * Kysely's SqliteDialect speaks better-sqlite3's API; node:sqlite differs in two places: parameters
 * are spread rather than passed as an array, and a statement does not say whether it returns rows
 * (`reader`), which `columns()` tells.
 */
function kyselyDatabase(db: NodeSqliteDatabase): SqliteDatabase {
  return {
    close: () => db.close(),
    prepare(text) {
      const stmt = db.prepare(text);
      return {
        reader: stmt.columns().length > 0,
        all: (params) => stmt.all(...(params as Param[])),
        run: (params) => stmt.run(...(params as Param[])) as { changes: number; lastInsertRowid: number },
        iterate: (params) => stmt.iterate(...(params as Param[])),
      };
    },
  };
}

/**
 * Keeps each statement prepared by SQL text (Kysely prepares every query anew). Kysely compiles the
 * same text for the same query shape, so the send path's five statements and the list query hit.
 */
function cachedStatements(db: SqliteDatabase, max = 64): SqliteDatabase {
  const cache = new Map<string, ReturnType<SqliteDatabase['prepare']>>();
  return {
    close: () => db.close(),
    prepare(text) {
      let stmt = cache.get(text);
      if (!stmt) {
        stmt = db.prepare(text);
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}

/** What the send path writes: a notification for one user or the whole workspace, ~0.5 KB of JSON. */
function content(i: number) {
  const id = randomUUID();
  const userId = i % 2 === 0 ? null : `u${i % USERS}`;
  const createdAt = new Date().toISOString();
  const data = { severity: 'high', topic: '#acmefail', volume: 1840 + i };
  return {
    id,
    userId,
    createdAt,
    data,
    title: `Negative spike #${i}`,
    body: 'Mentions are up 4x in the last hour',
  };
}

function eventPayload(c: ReturnType<typeof content>, seq: number): string {
  return JSON.stringify({
    type: 'notification',
    workspaceId: WORKSPACE,
    at: c.createdAt,
    userId: c.userId,
    notification: {
      id: c.id,
      workspaceId: WORKSPACE,
      userId: c.userId,
      type: 'crisis',
      title: c.title,
      body: c.body,
      priority: 'urgent',
      data: c.data,
      createdAt: c.createdAt,
      eventId: String(seq),
      readAt: null,
    },
  });
}

const UPSERT_SEQ = `insert into pulse_streams (stream_key, seq) values (?, 1)
  on conflict (stream_key) do update set seq = pulse_streams.seq + 1 returning seq`;
const INSERT_NOTIFICATION = `insert into pulse_notifications
  (id, workspace_id, seq, user_id, type, title, body, data, priority, idempotency_key, created_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  on conflict (workspace_id, idempotency_key) do nothing returning id`;
const INSERT_EVENT =
  'insert into pulse_notification_events (workspace_id, seq, recipient, payload) values (?, ?, ?, ?)';
const PRUNE = 'delete from pulse_notification_events where workspace_id = ? and seq <= ?';
const LIST = `select n.*, r.read_at from pulse_notifications as n
  left join pulse_notification_reads as r on r.notification_id = n.id and r.user_id = ?
  where n.workspace_id = ? and (n.user_id is null or n.user_id = ?)
  order by n.seq desc limit ?`;

interface Driven {
  send(i: number): Promise<void> | void;
  list(userId: string): Promise<number> | number;
  close(): Promise<void> | void;
}

function prepared(db: SyncDatabase): Driven {
  const begin = db.prepare('begin');
  const commit = db.prepare('commit');
  const upsert = db.prepare(UPSERT_SEQ);
  const insert = db.prepare(INSERT_NOTIFICATION);
  const append = db.prepare(INSERT_EVENT);
  const prune = db.prepare(PRUNE);
  const list = db.prepare(LIST);
  return {
    send(i) {
      const c = content(i);
      begin.run();
      const seq = Number((upsert.get(STREAM) as { seq: number }).seq);
      const inserted = insert.get(
        c.id,
        WORKSPACE,
        seq,
        c.userId,
        'crisis',
        c.title,
        c.body,
        JSON.stringify(c.data),
        'urgent',
        null,
        c.createdAt,
      );
      if (!inserted) throw new Error('idempotency conflict without a key');
      append.run(WORKSPACE, seq, c.userId, eventPayload(c, seq));
      if (seq - RETENTION > 0) prune.run(WORKSPACE, seq - RETENTION);
      commit.run();
    },
    list: (userId) => list.all(userId, WORKSPACE, userId, 51).length,
    close: () => db.close(),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the bench's tables are not typed
function viaKysely(db: Kysely<any>): Driven {
  return {
    async send(i) {
      const c = content(i);
      await db.transaction().execute(async (trx) => {
        const row = await sql<{ seq: number }>`
          insert into pulse_streams (stream_key, seq) values (${STREAM}, 1)
          on conflict (stream_key) do update set seq = pulse_streams.seq + 1
          returning seq`.execute(trx);
        const seq = Number(row.rows[0]?.seq);
        const inserted = await trx
          .insertInto('pulse_notifications')
          .values({
            id: c.id,
            workspace_id: WORKSPACE,
            seq,
            user_id: c.userId,
            type: 'crisis',
            title: c.title,
            body: c.body,
            data: JSON.stringify(c.data),
            priority: 'urgent',
            idempotency_key: null,
            created_at: c.createdAt,
          })
          .onConflict((oc) => oc.columns(['workspace_id', 'idempotency_key']).doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!inserted) throw new Error('idempotency conflict without a key');
        await trx
          .insertInto('pulse_notification_events')
          .values({ workspace_id: WORKSPACE, seq, recipient: c.userId, payload: eventPayload(c, seq) })
          .execute();
        if (seq - RETENTION > 0)
          await trx
            .deleteFrom('pulse_notification_events')
            .where('workspace_id', '=', WORKSPACE)
            .where('seq', '<=', seq - RETENTION)
            .execute();
      });
    },
    async list(userId) {
      const rows = await db
        .selectFrom('pulse_notifications as n')
        .leftJoin('pulse_notification_reads as r', (join) =>
          join.onRef('r.notification_id', '=', 'n.id').on('r.user_id', '=', userId),
        )
        .selectAll('n')
        .select('r.read_at')
        .where('n.workspace_id', '=', WORKSPACE)
        .where((eb) => eb.or([eb('n.user_id', 'is', null), eb('n.user_id', '=', userId)]))
        .orderBy('n.seq', 'desc')
        .limit(51)
        .execute();
      return rows.length;
    },
    close: () => db.destroy(),
  };
}

function drive(mode: Mode, driver: DriverName, db: SyncDatabase): Driven {
  if (mode === 'prepared') return prepared(db);
  let database =
    driver === 'better-sqlite3'
      ? (db as unknown as SqliteDatabase)
      : kyselyDatabase(db as NodeSqliteDatabase);
  if (mode === 'kysely-cached') database = cachedStatements(database);
  return viaKysely(new Kysely({ dialect: new SqliteDialect({ database }) }));
}

interface Sample {
  sendsPerSec: number;
  cpuUsPerSend: number;
  listMs: number[];
  cpuUsPerList: number;
}

const cpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

async function round(mode: Mode, driver: DriverName, dir: string, n: number): Promise<Sample> {
  const path = join(dir, `${mode}-${driver.replace(':', '-')}-${n}.db`);
  const db = open(driver, path);
  const driven = drive(mode, driver, db);
  // Warm-up (JIT, page cache), not counted; the counted sends continue the same stream.
  for (let i = 0; i < 200; i++) await driven.send(i);
  const start = process.hrtime.bigint();
  const cpuStart = cpuUs();
  for (let i = 0; i < SENDS; i++) await driven.send(200 + i);
  const cpuUsPerSend = (cpuUs() - cpuStart) / SENDS;
  const sendsPerSec = SENDS / (Number(process.hrtime.bigint() - start) / 1e9);
  // Some read state for the join: each user has read every third of the notifications they see.
  db.exec(`insert into pulse_notification_reads (notification_id, user_id, workspace_id, read_at)
    select n.id, u.id, n.workspace_id, n.created_at
    from pulse_notifications n join (${Array.from({ length: USERS }, (_, u) => `select 'u${u}' as id`).join(' union all ')}) u
    where (n.user_id is null or n.user_id = u.id) and n.seq % 3 = 0`);
  for (let i = 0; i < 100; i++) await driven.list(`u${i % USERS}`);
  const listMs: number[] = [];
  const listCpuStart = cpuUs();
  for (let i = 0; i < LIST_QUERIES; i++) {
    const t = process.hrtime.bigint();
    const count = await driven.list(`u${i % USERS}`);
    listMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (count !== 51) throw new Error(`list returned ${count} rows, expected 51`);
  }
  const cpuUsPerList = (cpuUs() - listCpuStart) / LIST_QUERIES;
  await driven.close();
  return { sendsPerSec, cpuUsPerSend, listMs, cpuUsPerList };
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const median = (values: number[]) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

const dir = mkdtempSync(join(tmpdir(), 'pulse-sqlite-bench-'));
const drivers: DriverName[] = nodeSqlite ? ['better-sqlite3', 'node:sqlite'] : ['better-sqlite3'];
const results = new Map<string, Sample[]>();
const before = loadavg();
const started = Date.now();
try {
  for (const mode of MODES) {
    for (let n = 0; n < ROUNDS; n++) {
      const order = n % 2 === 0 ? drivers : [...drivers].reverse();
      for (const driver of order) {
        const sample = await round(mode, driver, dir, n);
        const key = `${mode} ${driver}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.error(`  ${key} round ${n + 1}: ${Math.round(sample.sendsPerSec)} sends/s`);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const after = loadavg();

const addonVersion = (createRequire(import.meta.url)('better-sqlite3/package.json') as { version: string })
  .version;
const sqliteVersion = (db: SyncDatabase) =>
  (db.prepare('select sqlite_version() as v').get() as { v: string }).v;
const versions = `Node ${process.version}, better-sqlite3 ${addonVersion} (SQLite ${sqliteVersion(new SQLite(':memory:') as unknown as SyncDatabase)})${nodeSqlite ? `, node:sqlite (SQLite ${sqliteVersion(openNodeSqlite(':memory:'))})` : ', no node:sqlite'}`;
const fmt = (load: number[]) => load.map((l) => l.toFixed(2)).join(' / ');
console.log(
  `Run ${new Date(started).toISOString()} · ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length} · ${versions}`,
);
console.log(
  `Load average (1/5/15 min) before: ${fmt(before)}; after: ${fmt(after)} · ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
console.log(
  `${SENDS} sends per driver per round, ${ROUNDS} rounds (order alternating), ${LIST_QUERIES} list queries per round; WAL, synchronous=NORMAL, file in ${tmpdir()}`,
);
console.log('');
console.log(
  '| mode | driver | sends/s (median) | sends/s per round | CPU µs / send (median) | list p50 ms | list p99 ms | CPU µs / list (median) |',
);
console.log('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |');
const stats = (key: string) => {
  const samples = results.get(key) ?? [];
  const lists = samples.flatMap((s) => s.listMs).sort((a, b) => a - b);
  return {
    rates: samples.map((s) => s.sendsPerSec),
    rate: median(samples.map((s) => s.sendsPerSec)),
    cpu: median(samples.map((s) => s.cpuUsPerSend)),
    p50: quantile(lists, 0.5),
    p99: quantile(lists, 0.99),
    listCpu: median(samples.map((s) => s.cpuUsPerList)),
  };
};
const int = (value: number) => Math.round(value).toLocaleString('en-US');
for (const key of results.keys()) {
  const [mode, driver] = key.split(' ');
  const st = stats(key);
  console.log(
    `| ${mode} | ${driver} | ${int(st.rate)} | ${st.rates.map(int).join(' / ')} | ${st.cpu.toFixed(1)} | ${st.p50.toFixed(3)} | ${st.p99.toFixed(3)} | ${st.listCpu.toFixed(1)} |`,
  );
}
console.log('');
for (const mode of nodeSqlite ? MODES : []) {
  const a = stats(`${mode} better-sqlite3`);
  const b = stats(`${mode} node:sqlite`);
  console.log(
    `${mode}: node:sqlite / better-sqlite3 = ${(b.rate / a.rate).toFixed(2)}× sends/s, ${(b.cpu / a.cpu).toFixed(2)}× CPU per send, ${(b.p50 / a.p50).toFixed(2)}× list p50, ${(b.listCpu / a.listCpu).toFixed(2)}× CPU per list`,
  );
}
