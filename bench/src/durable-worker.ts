/**
 * One durable-write measurement in its own process (spawned by durable-writes.ts): `sends` durable
 * notifications to one workspace, `concurrency` in flight, through either
 *
 * - `pulse`: a real Pulse node's `server.caller.notifications.send` (validation, preferences read,
 *   the stream kernel's append, commit, publish to the hub, the published watermark), or
 * - `bare`: the bare driver (better-sqlite3 prepared statements / `pg` on a pool) writing the same
 *   rows into Pulse's own tables by hand: the stream head upsert, the notification row, the event
 *   row with its JSON, the retention prune, commit, then the published watermark — the least a
 *   hand-written transactional outbox does.
 *
 * Prints one JSON line: { sendsPerSec, cpuUsPerSend, p50Ms, p99Ms, maxMs, sends, errors }.
 * With DURABLE_PROFILE=<file>, writes a V8 CPU profile of the measured phase only (no start-up,
 * migrations or warm-up) to that file (`.cpuprofile`, open it in DevTools or read its nodes).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DurableWorkerOptions {
  engine: 'sqlite' | 'postgres';
  impl: 'pulse' | 'bare';
  concurrency: number;
  sends: number;
  warmup: number;
  /** PostgreSQL URL (engine postgres). */
  databaseUrl?: string;
  /** Workspace id, unique per run so streams never collide on a shared PostgreSQL. */
  workspaceId: string;
}

export interface DurableWorkerResult {
  sends: number;
  errors: number;
  sendsPerSec: number;
  cpuUsPerSend: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const RETENTION = 1_000;

/** The same notification content for both implementations (~0.5 KB of event JSON). */
function content(i: number) {
  return {
    // Distinct users, as the issue asks (each send reads its recipient's preferences in Pulse).
    userId: `user-${i % 1000}`,
    type: 'alert' as const,
    title: `Engagement spike on post #${i}`,
    body: 'Impressions up 38% over the last hour on the spring campaign post; replies are mostly positive.',
    priority: 'normal' as const,
    data: { alertType: 'system', severity: 'info', message: `impressions ${1000 + i} (1h)` },
  };
}

type Send = (i: number) => Promise<void>;

async function pulseSender(
  o: DurableWorkerOptions,
  dir: string,
): Promise<{ send: Send; close: () => Promise<void> }> {
  const { startPulseServer } = await import('@pulse/server');
  const server = await startPulseServer({
    sqliteFile: o.engine === 'sqlite' ? 'durable-bench.db' : undefined,
    config: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      jwt: { secret: 'durable-bench-secret-0123456789-abcdefghijklmnop' },
      dataDir: dir,
      databaseUrl: o.engine === 'postgres' ? o.databaseUrl : undefined,
    },
  });
  // biome-ignore lint/suspicious/noExplicitAny: the server's caller is typed by its router
  const caller = server.caller as any;
  return {
    send: async (i) => {
      await caller.notifications.send({ workspaceId: o.workspaceId, ...content(i) });
    },
    close: () => server.close({ graceMs: 0 }),
  };
}

function row(o: DurableWorkerOptions, i: number, seq: number) {
  const c = content(i);
  const id = randomUUID();
  const createdAt = new Date().toISOString();
  const notification = {
    id,
    workspaceId: o.workspaceId,
    userId: c.userId,
    type: c.type,
    title: c.title,
    body: c.body,
    priority: c.priority,
    data: c.data,
    createdAt,
    eventId: String(seq),
  };
  const event = {
    type: 'notification',
    workspaceId: o.workspaceId,
    at: createdAt,
    userId: c.userId,
    notification: { ...notification, readAt: null, seenAt: null, archivedAt: null },
  };
  return {
    values: [
      id,
      o.workspaceId,
      seq,
      c.userId,
      c.type,
      c.title,
      c.body,
      JSON.stringify(c.data),
      c.priority,
      'system',
      null,
      createdAt,
      0,
    ],
    payload: JSON.stringify(event),
    recipient: c.userId,
  };
}

const insertNotification =
  'insert into pulse_notifications (id, workspace_id, seq, user_id, type, title, body, data, priority, sender, idempotency_key, created_at, muted_default) values ';

async function bareSqlite(
  o: DurableWorkerOptions,
  dir: string,
): Promise<{ send: Send; close: () => Promise<void> }> {
  // NOTE: Pulse's own migrations create the tables (a node started and stopped), so indexes and
  // constraints are exactly Pulse's.
  const { startPulseServer } = await import('@pulse/server');
  const file = 'durable-bench.db';
  const node = await startPulseServer({
    sqliteFile: file,
    config: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      jwt: { secret: 'durable-bench-secret-0123456789-abcdefghijklmnop' },
      dataDir: dir,
    },
  });
  await node.close({ graceMs: 0 });
  const { default: SQLite } = await import('better-sqlite3');
  const db = new SQLite(join(dir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const streamKey = `notifications:${o.workspaceId}`;
  const head = db.prepare(
    'insert into pulse_streams (stream_key, seq, published_seq) values (?, 1, 0) on conflict (stream_key) do update set seq = pulse_streams.seq + 1 returning seq',
  );
  const note = db.prepare(`${insertNotification}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const ev = db.prepare(
    'insert into pulse_notification_events (workspace_id, seq, recipient, payload) values (?, ?, ?, ?)',
  );
  const prune = db.prepare('delete from pulse_notification_events where workspace_id = ? and seq <= ?');
  const published = db.prepare(
    'update pulse_streams set published_seq = ? where stream_key = ? and published_seq < ?',
  );
  const write = db.transaction((i: number) => {
    const seq = Number((head.get(streamKey) as { seq: number }).seq);
    const r = row(o, i, seq);
    note.run(...r.values);
    ev.run(o.workspaceId, seq, r.recipient, r.payload);
    if (seq - RETENTION > 0) prune.run(o.workspaceId, seq - RETENTION);
    return seq;
  });
  return {
    send: async (i) => {
      const seq = write(i);
      published.run(seq, streamKey, seq);
    },
    close: async () => {
      db.close();
    },
  };
}

async function barePostgres(
  o: DurableWorkerOptions,
  dir: string,
): Promise<{ send: Send; close: () => Promise<void> }> {
  const { startPulseServer } = await import('@pulse/server');
  const node = await startPulseServer({
    config: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      jwt: { secret: 'durable-bench-secret-0123456789-abcdefghijklmnop' },
      dataDir: dir,
      databaseUrl: o.databaseUrl,
    },
  });
  await node.close({ graceMs: 0 });
  const { default: pg } = await import('pg');
  // NOTE: the pool size of Pulse's own store (10), so concurrency is bounded the same way.
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: 10 });
  const streamKey = `notifications:${o.workspaceId}`;
  return {
    send: async (i) => {
      const client = await pool.connect();
      let seq: number;
      try {
        await client.query('begin');
        const { rows } = await client.query({
          name: 'head',
          text: 'insert into pulse_streams (stream_key, seq, published_seq) values ($1, 1, 0) on conflict (stream_key) do update set seq = pulse_streams.seq + 1 returning seq',
          values: [streamKey],
        });
        seq = Number(rows[0].seq);
        const r = row(o, i, seq);
        await client.query({
          name: 'note',
          text: `${insertNotification}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
          values: r.values,
        });
        await client.query({
          name: 'event',
          text: 'insert into pulse_notification_events (workspace_id, seq, recipient, payload) values ($1, $2, $3, $4)',
          values: [o.workspaceId, seq, r.recipient, r.payload],
        });
        if (seq - RETENTION > 0) {
          await client.query({
            name: 'prune',
            text: 'delete from pulse_notification_events where workspace_id = $1 and seq <= $2',
            values: [o.workspaceId, seq - RETENTION],
          });
        }
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
      await pool.query({
        name: 'published',
        text: 'update pulse_streams set published_seq = $1 where stream_key = $2 and published_seq < $1',
        values: [seq, streamKey],
      });
    },
    close: () => pool.end(),
  };
}

async function drive(send: Send, from: number, count: number, concurrency: number) {
  const latencies: number[] = [];
  let next = from;
  let errors = 0;
  let firstError: unknown;
  const end = from + count;
  const lane = async () => {
    while (next < end) {
      const i = next++;
      const t0 = performance.now();
      try {
        await send(i);
      } catch (error) {
        errors += 1;
        firstError ??= error;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  if (errors > 0)
    console.error(`durable-worker: ${errors} failed sends, first: ${(firstError as Error)?.message}`);
  return { latencies, errors };
}

/** Starts the V8 profiler; the returned function stops it and writes the profile to a file. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

async function main() {
  const o = JSON.parse(process.argv[2] ?? '{}') as DurableWorkerOptions;
  const dir = mkdtempSync(join(tmpdir(), 'pulse-durable-'));
  try {
    const make = o.impl === 'pulse' ? pulseSender : o.engine === 'sqlite' ? bareSqlite : barePostgres;
    const { send, close } = await make(o, dir);
    await drive(send, 0, o.warmup, o.concurrency);
    const profile = process.env.DURABLE_PROFILE ? await startProfile() : undefined;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { latencies, errors } = await drive(send, o.warmup, o.sends, o.concurrency);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (profile && process.env.DURABLE_PROFILE) await profile(process.env.DURABLE_PROFILE);
    await close();
    latencies.sort((a, b) => a - b);
    const at = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
    const result: DurableWorkerResult = {
      sends: o.sends,
      errors,
      sendsPerSec: (o.sends / wall) * 1000,
      cpuUsPerSend: (cpu.user + cpu.system) / o.sends,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: latencies.at(-1) ?? Number.NaN,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
