import pg from 'pg';
import type { OfficialClient, Recorder } from './clients.js';
import type { PublisherMessage } from './protocol.js';

export type Ack = Extract<PublisherMessage, { t: 'ack' }>;

export interface Violation {
  rule: string;
  who?: string;
  detail: string;
  /** The first violating history (trimmed), for the report. */
  history?: unknown;
}

export interface StoreSnapshot {
  /** Per workspace: the durable notification stream, in seq order. */
  events: Map<
    string,
    Array<{ seq: string; recipient: string | null; type: string; notificationId?: string }>
  >;
  /** pulse_notifications rows. */
  notifications: Array<{
    id: string;
    workspaceId: string;
    seq: string;
    userId: string | null;
    key: string | null;
  }>;
}

/** Reads what the store holds (after the run, every fault healed). */
export async function readStore(databaseUrl: string, workspaces: string[]): Promise<StoreSnapshot> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const ev = await client.query(
      'select workspace_id, seq::text as seq, recipient, payload from pulse_notification_events where workspace_id = any($1) order by workspace_id, pulse_notification_events.seq',
      [workspaces],
    );
    const events: StoreSnapshot['events'] = new Map(workspaces.map((w) => [w, []]));
    for (const row of ev.rows) {
      const payload = JSON.parse(row.payload) as { type: string; notification?: { id: string } };
      events.get(row.workspace_id)!.push({
        seq: row.seq,
        recipient: row.recipient,
        type: payload.type,
        notificationId: payload.notification?.id,
      });
    }
    const nt = await client.query(
      'select id, workspace_id, seq::text as seq, user_id, idempotency_key from pulse_notifications where workspace_id = any($1)',
      [workspaces],
    );
    return {
      events,
      notifications: nt.rows.map((r) => ({
        id: r.id,
        workspaceId: r.workspace_id,
        seq: r.seq,
        userId: r.user_id,
        key: r.idempotency_key,
      })),
    };
  } finally {
    await client.end();
  }
}

/** The last `n` items of a history, led by how many were left out (a violation's report). */
export const tail = <T>(items: T[], n = 12) =>
  items.length > n ? [`…${items.length - n} earlier`, ...items.slice(-n)] : items;

/**
 * How a client's ids differ from the store's (null when equal): the first difference, what is
 * missing and what came twice, for a violation's detail and history.
 */
export function historyDiff(
  ids: string[],
  want: string[],
): { detail: string; history: { got: string[]; store: string[] } } | null {
  if (ids.length === want.length && ids.every((id, i) => id === want[i])) return null;
  const firstDiff = ids.findIndex((id, i) => id !== want[i]);
  const at = firstDiff === -1 ? Math.min(ids.length, want.length) : firstDiff;
  const seenSet = new Set(ids);
  const missing = want.filter((id) => !seenSet.has(id));
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const dups = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  return {
    detail: `got ${ids.length} events, the store has ${want.length}; first difference at index ${at} (got ${ids[at]}, store ${want[at]}); missing ${missing.length} [${missing.slice(0, 10).join(',')}], duplicated [${dups.slice(0, 10).join(',')}]`,
    history: {
      got: ids.slice(Math.max(0, at - 5), at + 10),
      store: want.slice(Math.max(0, at - 5), at + 10),
    },
  };
}

/** Every rule of issue 19 the run checks on durable notifications; returns the violations found. */
export function checkNotifications(input: {
  store: StoreSnapshot;
  acks: Ack[];
  official: OfficialClient[];
  /** Every recorder (official, raw, burst): isolation applies to all of them. */
  all: Recorder[];
}): { violations: Violation[]; checkedEvents: number; checkedClients: number } {
  const { store, acks, official, all } = input;
  const violations: Violation[] = [];
  let checkedEvents = 0;
  let checkedClients = 0;

  // Isolation: nothing outside the recorder's workspace or recipient set, whoever it is.
  for (const r of all) {
    for (const e of r.seen) {
      if (e.type !== 'notification') continue;
      if (e.workspaceId !== r.workspaceId || (e.userId !== null && e.userId !== r.user)) {
        violations.push({
          rule: 'isolation',
          who: r.label,
          detail: `${r.label} (user ${r.user} in ${r.workspaceId}) got event ${e.id} for workspace ${e.workspaceId} user ${e.userId}`,
          history: e,
        });
        break;
      }
    }
  }

  // Exactly once, in id order, nothing missing, for every still-subscribed official client.
  for (const c of official) {
    if (!c.subscribed) {
      violations.push({
        rule: 'subscribed',
        who: c.label,
        detail: `${c.label} gave up resubscribing`,
        history: tail(c.errors),
      });
      continue;
    }
    checkedClients++;
    const stream = store.events.get(c.workspaceId) ?? [];
    const expected = stream.filter(
      (e) => e.type === 'notification' && (e.recipient === null || e.recipient === c.user),
    );
    const got = c.seen.filter((e) => e.type !== 'sync');
    const resets = got.filter((e) => e.type === 'reset');
    if (resets.length > 0) {
      violations.push({
        rule: 'reset',
        who: c.label,
        detail: `${c.label} got ${resets.length} reset(s) although retention exceeds the run's events`,
        history: tail(got.map((e) => `${e.id}:${e.type}`)),
      });
      continue;
    }
    const ids = got.map((e) => e.id);
    const want = expected.map((e) => e.seq);
    const diff = historyDiff(ids, want);
    if (diff) {
      violations.push({
        rule: 'exactly-once-in-order',
        who: c.label,
        detail: `${c.label} (user ${c.user} in ${c.workspaceId}): ${diff.detail}`,
        history: { ...diff.history, errors: tail(c.errors, 5), resubscribes: c.resubscribes },
      });
      continue;
    }
    for (const [i, e] of got.entries()) {
      if (e.notificationId !== expected[i]!.notificationId) {
        violations.push({
          rule: 'event-content',
          who: c.label,
          detail: `${c.label}: event ${e.id} carried notification ${e.notificationId}, the store's is ${expected[i]!.notificationId}`,
        });
        break;
      }
    }
    checkedEvents += got.length;
  }

  // Every publish that returned success is stored, exactly once per idempotency key.
  const byId = new Map(store.notifications.map((n) => [n.id, n]));
  const rowsPerKey = new Map<string, number>();
  for (const n of store.notifications) if (n.key) rowsPerKey.set(n.key, (rowsPerKey.get(n.key) ?? 0) + 1);
  const idPerKey = new Map<string, string>();
  const createdPerKey = new Map<string, number>();
  for (const a of acks) {
    const row = byId.get(a.notificationId);
    if (!row) {
      violations.push({
        rule: 'stored',
        who: a.key,
        detail: `publish ${a.key} returned ${a.notificationId}, not in the store`,
        history: a,
      });
      continue;
    }
    if (row.seq !== a.eventId || row.workspaceId !== a.workspaceId || row.userId !== a.userId)
      violations.push({
        rule: 'stored',
        who: a.key,
        detail: `publish ${a.key}: the stored row differs from the result`,
        history: { a, row },
      });
    const prior = idPerKey.get(a.key);
    if (prior && prior !== a.notificationId)
      violations.push({
        rule: 'idempotency',
        who: a.key,
        detail: `key ${a.key} returned two ids: ${prior}, ${a.notificationId}`,
      });
    idPerKey.set(a.key, a.notificationId);
    if (a.created) createdPerKey.set(a.key, (createdPerKey.get(a.key) ?? 0) + 1);
  }
  for (const [key, rows] of rowsPerKey)
    if (rows !== 1)
      violations.push({ rule: 'idempotency', who: key, detail: `key ${key} is stored ${rows} times` });
  for (const [key, n] of createdPerKey)
    if (n > 1)
      violations.push({ rule: 'idempotency', who: key, detail: `key ${key} reported created ${n} times` });
  // Every stored notification has its stream event (and the other way round).
  for (const [ws, stream] of store.events) {
    const rows = store.notifications.filter((n) => n.workspaceId === ws);
    const seqs = new Set(stream.filter((e) => e.type === 'notification').map((e) => e.seq));
    for (const r of rows)
      if (!seqs.has(r.seq))
        violations.push({
          rule: 'stored',
          who: r.id,
          detail: `notification ${r.id} (seq ${r.seq}) has no stream event in ${ws}`,
        });
    // Gap-free ids (the stream's promise, which resume relies on).
    for (const [i, e] of stream.entries())
      if (e.seq !== String(i + 1)) {
        violations.push({
          rule: 'gap-free',
          who: ws,
          detail: `stream ${ws}: position ${i + 1} holds seq ${e.seq}`,
        });
        break;
      }
  }
  return { violations, checkedEvents, checkedClients };
}
