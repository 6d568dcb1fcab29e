/**
 * One durable-write measurement in its own process (spawned by durable-writes.ts): `sends` durable
 * writes to one workspace, `concurrency` in flight. With `op: 'send'` (the default) each is a
 * notification, through either
 *
 * - `pulse`: a real Pulse node's `server.caller.notifications.send` (validation, preferences read,
 *   the stream kernel's append, commit, publish to the hub, the published watermark), or
 * - `bare`: the bare driver (better-sqlite3 prepared statements / `pg` on a pool) writing the same
 *   rows into Pulse's own tables by hand: the stream head upsert, the notification row, the event
 *   row with its JSON, the retention prune, commit, then the published watermark — the least a
 *   hand-written transactional outbox does.
 *
 * With `op: 'receive'` each is an inbound platform message (`inbox.receive`), through either
 *
 * - `pulse`: `server.caller.inbox.receive` (validation, the stream id, the conversation lookup by
 *   platform thread, the idempotency lookup by `platformMessageId`, the conversation insert or
 *   update with its SLA clock, the message row, the inbox events, commit, publish), or
 * - `bare`: the bare driver running the statements Pulse's receive runs (DURABLE_LOG_SQL=1 prints
 *   them: Pulse's for `pulse`, these for `bare`), prepared once, one transaction per message, then
 *   the published watermark. What the bare writer leaves out is Pulse's relay lease (the claim
 *   inside the transaction and its release after: multi-node machinery a one-process outbox does
 *   not need), as in the `send` comparison.
 *
 * Message i goes to conversation ⌊i / 4⌋: one message opens a conversation (the created path: two
 * stream ids, two events, the SLA read), the next three follow up while nobody has answered (the
 * idempotency lookup, the conversation update; the clock keeps running). A real inbox has both
 * paths in one stream; this keeps their mix fixed (¼ : ¾) in every window measured.
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
  /** What each write is: a notification (`notifications.send`) or an inbound message (`inbox.receive`). */
  op?: 'send' | 'receive';
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
    send:
      o.op === 'receive'
        ? async (i) => {
            await caller.inbox.receive(inbound(o, i));
          }
        : async (i) => {
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

// ---------------------------------------------------------------------------------------------
// inbox.receive

/** Messages per conversation (the first opens it; see the header). */
const PER_CONVERSATION = 4;
const INBOX_RETENTION = 1_000;
/** Pulse's default SLA (config.inbox.slaMs): the bench workspace sets none. */
const DEFAULT_SLA_MS = 15 * 60_000;

/** The same inbound message for both implementations. */
function inbound(o: DurableWorkerOptions, i: number) {
  const thread = Math.floor(i / PER_CONVERSATION);
  return {
    workspaceId: o.workspaceId,
    platform: 'instagram' as const,
    externalId: `ig-thread-${thread}`,
    contact: { id: `ig-user-${thread}`, name: `Customer ${thread}`, handle: `@customer${thread}` },
    body: `Hi! Order #${10_000 + i} arrived with a cracked lid; can you send a replacement or should I return it?`,
    platformMessageId: `ig-msg-${i}`,
  };
}

interface ConversationRow {
  id: string;
  workspace_id: string;
  platform: string;
  external_id: string;
  contact: string;
  status: string;
  assignee_id: string | null;
  created_at: string;
  last_message_at: string;
  sla_started_at: number | string | null;
  sla_due_at: number | string | null;
  escalated_at: string | null;
  alerted_at: string | null;
}

/** The conversation as Pulse's events carry it. */
function conversationView(row: ConversationRow) {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    platform: row.platform,
    externalId: row.external_id,
    contact: JSON.parse(row.contact),
    status: row.status,
    assigneeId: row.assignee_id,
    createdAt: row.created_at,
    lastMessageAt: row.last_message_at,
    slaDueAt: row.sla_due_at === null ? null : new Date(Number(row.sla_due_at)).toISOString(),
    escalatedAt: row.escalated_at,
  };
}

const conversationColumns =
  'id, workspace_id, platform, external_id, contact, status, assignee_id, created_at, last_message_at, sla_started_at, sla_due_at, escalated_at, alerted_at';
const messageColumns =
  'id, workspace_id, conversation_id, seq, direction, author_id, author_name, body, at, platform_message_id, client_message_id';

type Rows = Array<Record<string, unknown>>;
type StatementName = keyof typeof receiveSql;
/**
 * One receive's statements, engine aside: each `yield [name, values]` runs one statement of
 * `receiveSql` in the open transaction and resumes with its rows (a generator, so the SQLite writer
 * runs it synchronously and the PostgreSQL one awaits each round trip).
 */
type Steps = Generator<[StatementName, unknown[]], number | null, Rows>;

const receiveSql = {
  head: 'insert into pulse_streams (stream_key, seq) values (?, 1) on conflict (stream_key) do update set seq = pulse_streams.seq + 1 returning seq',
  conversation:
    'select * from pulse_inbox_conversations where workspace_id = ? and platform = ? and external_id = ?',
  duplicate: 'select * from pulse_inbox_messages where conversation_id = ? and platform_message_id = ?',
  sla: 'select sla_ms from pulse_inbox_settings where workspace_id = ?',
  insertConversation: `insert into pulse_inbox_conversations (${conversationColumns}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  touch:
    'update pulse_inbox_conversations set contact = ?, status = ?, last_message_at = ? where id = ? returning *',
  restart:
    'update pulse_inbox_conversations set contact = ?, status = ?, last_message_at = ?, sla_started_at = ?, sla_due_at = ?, escalated_at = ?, alerted_at = ? where id = ? returning *',
  insertMessage: `insert into pulse_inbox_messages (${messageColumns}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  event: 'insert into pulse_inbox_events (workspace_id, seq, conversation_id, event) values (?, ?, ?, ?)',
  prune: 'delete from pulse_inbox_events where workspace_id = ? and seq <= ?',
  published: 'update pulse_streams set published_seq = ? where stream_key = ? and published_seq < ?',
} as const;

/** PostgreSQL's numbered placeholders for a `?` statement. */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/**
 * One receive inside an open transaction (the same branches as Pulse's); returns the last stream id
 * it took, or null when the message was a duplicate (the caller rolls back).
 */
function* receiveSteps(o: DurableWorkerOptions, i: number): Steps {
  const m = inbound(o, i);
  const streamKey = `inbox:${o.workspaceId}`;
  const now = Date.now();
  const at = new Date(now).toISOString();
  const contact = JSON.stringify(m.contact);
  function* nextSeq(): Generator<[StatementName, unknown[]], number, Rows> {
    return Number((yield ['head', [streamKey]])[0]?.seq);
  }
  function* slaMs(): Generator<[StatementName, unknown[]], number, Rows> {
    const [row] = yield ['sla', [o.workspaceId]];
    return row ? Number(row.sla_ms) : DEFAULT_SLA_MS;
  }
  function* event(
    seq: number,
    conversationId: string,
    payload: unknown,
  ): Generator<[StatementName, unknown[]], void, Rows> {
    yield ['event', [o.workspaceId, seq, conversationId, JSON.stringify(payload)]];
    if (seq - INBOX_RETENTION > 0) yield ['prune', [o.workspaceId, seq - INBOX_RETENTION]];
  }
  let seq = yield* nextSeq();
  let [row] = (yield [
    'conversation',
    [o.workspaceId, m.platform, m.externalId],
  ]) as unknown as ConversationRow[];
  if (row) {
    const [dup] = yield ['duplicate', [row.id, m.platformMessageId]];
    if (dup) return null;
  }
  if (!row) {
    row = {
      id: `cv_${randomUUID()}`,
      workspace_id: o.workspaceId,
      platform: m.platform,
      external_id: m.externalId,
      contact,
      status: 'open',
      assignee_id: null,
      created_at: at,
      last_message_at: at,
      sla_started_at: now,
      sla_due_at: now + (yield* slaMs()),
      escalated_at: null,
      alerted_at: null,
    };
    yield ['insertConversation', Object.values(row)];
    yield* event(seq, row.id, {
      type: 'conversation',
      workspaceId: o.workspaceId,
      at,
      conversationId: row.id,
      change: 'created',
      conversation: conversationView(row),
      byUserId: null,
    });
    seq = yield* nextSeq();
  } else {
    const status = row.status === 'closed' ? 'open' : row.status;
    // ISO-8601 UTC times compare as strings: the later one.
    let last = row.last_message_at;
    if (at > last) last = at;
    const [updated] = (row.sla_due_at !== null
      ? yield ['touch', [contact, status, last, row.id]]
      : yield [
          'restart',
          [contact, status, last, now, now + (yield* slaMs()), null, null, row.id],
        ]) as unknown as ConversationRow[];
    row = updated as ConversationRow;
  }
  const message = {
    id: `msg_${randomUUID()}`,
    workspace_id: o.workspaceId,
    conversation_id: row.id,
    seq,
    direction: 'inbound',
    author_id: null,
    author_name: m.contact.name,
    body: m.body,
    at,
    platform_message_id: m.platformMessageId,
    client_message_id: null,
  };
  yield ['insertMessage', Object.values(message)];
  yield* event(seq, row.id, {
    type: 'message',
    workspaceId: o.workspaceId,
    at,
    conversationId: row.id,
    message: {
      id: message.id,
      conversationId: row.id,
      workspaceId: o.workspaceId,
      direction: 'inbound',
      authorId: null,
      authorName: message.author_name,
      body: message.body,
      at,
      platformMessageId: message.platform_message_id,
      clientMessageId: null,
      eventId: String(seq),
    },
    conversation: conversationView(row),
  });
  return seq;
}

/** Thrown inside a bare transaction to roll a duplicate back. */
class Duplicate extends Error {}

async function bareSqliteReceiver(
  o: DurableWorkerOptions,
  dir: string,
): Promise<{ send: Send; close: () => Promise<void> }> {
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
  // Prepared once each, as a bare-driver app keeps them.
  const statements = new Map(
    Object.entries(receiveSql).map(([name, text]) => [name, db.prepare<unknown[]>(text)] as const),
  );
  const run = (name: StatementName, values: unknown[]): Rows => {
    const stmt = statements.get(name);
    if (!stmt) throw new Error(`no statement ${name}`);
    if (stmt.reader) return stmt.all(...values) as Rows;
    stmt.run(...values);
    return [];
  };
  const streamKey = `inbox:${o.workspaceId}`;
  // One transaction per message, synchronous from begin to commit (as the send writer's).
  const write = db.transaction((i: number) => {
    const steps = receiveSteps(o, i);
    let step = steps.next();
    while (!step.done) step = steps.next(run(...step.value));
    if (step.value === null) throw new Duplicate();
    return step.value;
  });
  return {
    send: async (i) => {
      let seq: number;
      try {
        seq = write(i);
      } catch (error) {
        if (error instanceof Duplicate) return;
        throw error;
      }
      run('published', [seq, streamKey, seq]);
    },
    close: async () => {
      db.close();
    },
  };
}

async function barePostgresReceiver(
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
  const texts = Object.fromEntries(
    Object.entries(receiveSql).map(([name, text]) => [name, numbered(text)]),
  ) as Record<StatementName, string>;
  const streamKey = `inbox:${o.workspaceId}`;
  return {
    send: async (i) => {
      const client = await pool.connect();
      let seq: number | null;
      try {
        await client.query('begin');
        // Named: each connection prepares a statement once and runs it by name after.
        const steps = receiveSteps(o, i);
        let step = steps.next();
        while (!step.done) {
          const [name, values] = step.value;
          const { rows } = await client.query({ name, text: texts[name], values });
          step = steps.next(rows);
        }
        seq = step.value;
        await client.query(seq === null ? 'rollback' : 'commit');
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
      if (seq === null) return;
      await pool.query({ name: 'published', text: texts.published, values: [seq, streamKey, seq] });
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

/**
 * DURABLE_LOG_SQL=1: prints to stderr every statement the writer's drivers run while `on` (better-
 * sqlite3 and pg patched at their prototypes, so Kysely's compiled SQL shows as sent).
 */
async function statementLog(): Promise<{ on: (label: string) => void; off: () => void }> {
  let label: string | null = null;
  const say = (text: string, values: unknown) => {
    if (label !== null)
      console.error(
        `  [${label}] ${text.replace(/\s+/g, ' ').trim()}  ${JSON.stringify(values ?? [])}`.slice(0, 400),
      );
  };
  const { default: SQLite } = await import('better-sqlite3');
  const prepare = SQLite.prototype.prepare;
  let patched = false;
  // biome-ignore lint/suspicious/noExplicitAny: patching the driver's prototypes for a log
  (SQLite.prototype as any).prepare = function (this: unknown, text: string) {
    // biome-ignore lint/suspicious/noExplicitAny: see above
    const stmt = (prepare as any).call(this, text);
    if (!patched) {
      patched = true;
      const proto = Object.getPrototypeOf(stmt);
      for (const method of ['run', 'all', 'get'] as const) {
        const original = proto[method];
        proto[method] = function (this: { source: string }, ...args: unknown[]) {
          say(this.source, args);
          return original.apply(this, args);
        };
      }
    }
    return stmt;
  };
  const { default: pg } = await import('pg');
  const query = pg.Client.prototype.query;
  // biome-ignore lint/suspicious/noExplicitAny: see above
  (pg.Client.prototype as any).query = function (this: unknown, ...args: any[]) {
    const [config, values] = args;
    if (typeof config === 'string') say(config, values);
    else if (config?.text) say(config.name ? `(${config.name}) ${config.text}` : config.text, config.values);
    // biome-ignore lint/suspicious/noExplicitAny: see above
    return (query as any).apply(this, args);
  };
  return {
    on: (l) => {
      label = l;
    },
    off: () => {
      label = null;
    },
  };
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
    const make =
      o.impl === 'pulse'
        ? pulseSender
        : o.op === 'receive'
          ? o.engine === 'sqlite'
            ? bareSqliteReceiver
            : barePostgresReceiver
          : o.engine === 'sqlite'
            ? bareSqlite
            : barePostgres;
    const log = process.env.DURABLE_LOG_SQL ? await statementLog() : undefined;
    const { send, close } = await make(o, dir);
    if (log) {
      // Two writes of their own (ids far past the run's): a new conversation, then a follow-up.
      for (const [i, what] of [
        [1_000_000_000, 'first'],
        [1_000_000_001, 'second'],
      ] as const) {
        console.error(
          `durable-worker ${o.impl} ${o.engine} ${o.op ?? 'send'}: the ${what} write's statements`,
        );
        log.on(what);
        await send(i);
        log.off();
      }
    }
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
