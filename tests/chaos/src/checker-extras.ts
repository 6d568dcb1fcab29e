import pg from 'pg';
import { historyDiff, tail, type Violation } from './checker.js';
import type { ExtraSeen, OfficialClient } from './clients.js';
import type { PublisherMessage } from './protocol.js';

export type ChannelAck = Extract<PublisherMessage, { t: 'channel-ack' }>;
export type InboxAck = Extract<PublisherMessage, { t: 'inbox-ack' }>;
export type DashAck = Extract<PublisherMessage, { t: 'dash-ack' }>;

/** What the store holds of the channel, the inbox and the dashboard after the run. */
export interface ExtrasStore {
  /** Per workspace: the channel's stream, in seq order. */
  channel: Map<string, Array<{ seq: string; key: string; pubKey: string }>>;
  /** Per workspace: the inbox stream, in seq order. */
  inbox: Map<
    string,
    Array<{
      seq: string;
      type: string;
      conversationId: string | null;
      direction?: string;
      /** The conversation's SLA due time as the event carries it (message, sla_escalated). */
      slaDueAt?: string | null;
      at: string;
    }>
  >;
  messages: Array<{
    id: string;
    conversationId: string;
    seq: string;
    platformMessageId: string | null;
    clientMessageId: string | null;
  }>;
  conversations: Array<{
    id: string;
    workspaceId: string;
    slaDueAt: number | null;
    escalatedAt: string | null;
    alertedAt: string | null;
  }>;
  /** Per workspace: latest dashboard value per key. */
  dashboard: Map<string, Map<string, { at: string; value: number }>>;
  /** SLA alert notifications (idempotency key `inbox-sla:<conversation>:<start>`) per conversation. */
  slaAlerts: Map<string, number>;
}

export const channelStreamKey = (workspaceId: string) => `channel.chaosPosts:${workspaceId}`;

export async function readExtras(databaseUrl: string, workspaces: string[]): Promise<ExtrasStore> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const channel: ExtrasStore['channel'] = new Map(workspaces.map((w) => [w, []]));
    const ch = await client.query(
      'select stream_key, seq::text as seq, recipient, payload from pulse_stream_events where stream_key = any($1) order by stream_key, pulse_stream_events.seq',
      [workspaces.map(channelStreamKey)],
    );
    for (const row of ch.rows) {
      const payload = JSON.parse(row.payload) as {
        workspaceId: string;
        key: string;
        data: { pubKey: string };
      };
      channel
        .get(payload.workspaceId)
        ?.push({ seq: row.seq, key: row.recipient, pubKey: payload.data.pubKey });
    }
    const inbox: ExtrasStore['inbox'] = new Map(workspaces.map((w) => [w, []]));
    const ib = await client.query(
      'select workspace_id, seq::text as seq, conversation_id, event from pulse_inbox_events where workspace_id = any($1) order by workspace_id, pulse_inbox_events.seq',
      [workspaces],
    );
    for (const row of ib.rows) {
      const e = JSON.parse(row.event) as {
        type: string;
        at: string;
        message?: { direction: string };
        conversation?: { slaDueAt: string | null };
      };
      inbox.get(row.workspace_id)!.push({
        seq: row.seq,
        type: e.type,
        conversationId: row.conversation_id,
        direction: e.message?.direction,
        slaDueAt: e.conversation?.slaDueAt,
        at: e.at,
      });
    }
    const ms = await client.query(
      'select id, conversation_id, seq::text as seq, platform_message_id, client_message_id from pulse_inbox_messages where workspace_id = any($1)',
      [workspaces],
    );
    const cv = await client.query(
      'select id, workspace_id, sla_due_at, escalated_at, alerted_at from pulse_inbox_conversations where workspace_id = any($1)',
      [workspaces],
    );
    const dv = await client.query(
      'select workspace_id, value_key, event from pulse_dashboard_values where workspace_id = any($1)',
      [workspaces],
    );
    const dashboard: ExtrasStore['dashboard'] = new Map(workspaces.map((w) => [w, new Map()]));
    for (const row of dv.rows) {
      const e = JSON.parse(row.event) as { at: string; value: number };
      dashboard.get(row.workspace_id)!.set(row.value_key, { at: e.at, value: e.value });
    }
    const al = await client.query(
      "select idempotency_key from pulse_notifications where workspace_id = any($1) and idempotency_key like 'inbox-sla:%'",
      [workspaces],
    );
    const slaAlerts = new Map<string, number>();
    for (const row of al.rows) {
      const conversationId = String(row.idempotency_key).split(':')[1]!;
      slaAlerts.set(conversationId, (slaAlerts.get(conversationId) ?? 0) + 1);
    }
    return {
      channel,
      inbox,
      messages: ms.rows.map((r) => ({
        id: r.id,
        conversationId: r.conversation_id,
        seq: r.seq,
        platformMessageId: r.platform_message_id,
        clientMessageId: r.client_message_id,
      })),
      conversations: cv.rows.map((r) => ({
        id: r.id,
        workspaceId: r.workspace_id,
        slaDueAt: r.sla_due_at === null ? null : Number(r.sla_due_at),
        escalatedAt: r.escalated_at,
        alertedAt: r.alerted_at,
      })),
      dashboard,
      slaAlerts,
    };
  } finally {
    await client.end();
  }
}

/** The store's stream a client's extra subscription must have received, id for id. */
export function expectedOf(store: ExtrasStore, c: OfficialClient): string[] {
  const extra = c.extra!;
  if (extra.kind === 'channel') {
    const key = JSON.stringify({ postId: extra.postId });
    return (store.channel.get(c.workspaceId) ?? []).filter((e) => e.key === key).map((e) => e.seq);
  }
  return (store.inbox.get(c.workspaceId) ?? []).map((e) => e.seq);
}

/** A dashboard client's view: the doc's client logic (a snapshot replaces everything, an update sets its key). */
export function dashboardView(seen: ExtraSeen[]): Map<string, { at: string; value: number }> {
  const view = new Map<string, { at: string; value: number }>();
  for (const e of seen) {
    if (e.type === 'snapshot') view.clear();
    for (const v of e.values ?? []) view.set(v.key, { at: v.at, value: v.value });
  }
  return view;
}

/** Keys whose store value the client's view does not hold (empty: converged). */
export function dashboardDiff(store: ExtrasStore, c: OfficialClient): string[] {
  const want = store.dashboard.get(c.workspaceId) ?? new Map();
  const have = dashboardView(c.extra!.seen);
  const diff: string[] = [];
  for (const [key, v] of want) {
    const got = have.get(key);
    if (!got || got.at !== v.at || got.value !== v.value)
      diff.push(`${key}: store ${v.value}@${v.at}, client ${got ? `${got.value}@${got.at}` : 'none'}`);
  }
  for (const key of have.keys()) if (!want.has(key)) diff.push(`${key}: not in the store`);
  return diff;
}

/**
 * The channel, inbox, SLA and dashboard rules of issue 19; returns the violations found and what was
 * checked. `escalateBefore`: epoch ms; a clock due before it must have escalated by the checks.
 */
export function checkExtras(input: {
  store: ExtrasStore;
  official: OfficialClient[];
  channelAcks: ChannelAck[];
  inboxAcks: InboxAck[];
  dashAcks: DashAck[];
  escalateBefore: number;
}) {
  const { store, official, channelAcks, inboxAcks, escalateBefore } = input;
  const violations: Violation[] = [];
  const checked = {
    channelClients: 0,
    channelEvents: 0,
    inboxClients: 0,
    inboxEvents: 0,
    dashboardClients: 0,
  };

  for (const c of official) {
    const extra = c.extra;
    if (!extra) continue;
    const who = `${c.label} (${extra.kind}${extra.postId ? ` ${extra.postId}` : ''}, user ${c.user} in ${c.workspaceId})`;
    if (!extra.subscribed) {
      violations.push({
        rule: `${extra.kind}-subscribed`,
        who: c.label,
        detail: `${who} gave up resubscribing`,
        history: tail(extra.errors),
      });
      continue;
    }
    // Isolation: nothing from another workspace (or, on the channel, another post).
    const channelKey = JSON.stringify({ postId: extra.postId });
    const foreign = extra.seen.find(
      (e) =>
        (e.workspaceId !== undefined && e.workspaceId !== c.workspaceId) ||
        (e.values ?? []).some((v) => v.workspaceId !== c.workspaceId) ||
        (extra.kind === 'channel' && e.type === 'event' && e.key !== channelKey),
    );
    if (foreign) {
      violations.push({
        rule: `${extra.kind}-isolation`,
        who: c.label,
        detail: `${who} got ${JSON.stringify(foreign)}`,
      });
      continue;
    }
    if (extra.kind === 'dashboard') {
      checked.dashboardClients++;
      // Latest-value semantics: a key's measurement time never moves back, and the view is the store's.
      const last = new Map<string, string>();
      let back: string | null = null;
      for (const e of extra.seen)
        for (const v of e.values ?? []) {
          const prev = last.get(v.key);
          if (prev !== undefined && v.at < prev && !back) back = `${v.key}: ${prev} then ${v.at} (${e.type})`;
          last.set(v.key, v.at);
        }
      if (back)
        violations.push({
          rule: 'dashboard-forward',
          who: c.label,
          detail: `${who} saw a value move back: ${back}`,
        });
      const diff = dashboardDiff(store, c);
      if (diff.length > 0)
        violations.push({
          rule: 'dashboard-converged',
          who: c.label,
          detail: `${who} did not converge on the store's latest values: ${diff.slice(0, 5).join('; ')}`,
          history: {
            resubscribes: extra.resubscribes,
            errors: tail(extra.errors, 5),
            events: extra.seen.length,
          },
        });
      continue;
    }
    const got = extra.seen.filter((e) => e.type !== 'sync');
    const resets = got.filter((e) => e.type === 'reset');
    if (resets.length > 0) {
      violations.push({
        rule: `${extra.kind}-reset`,
        who: c.label,
        detail: `${who} got ${resets.length} reset(s) although retention exceeds the run's events`,
      });
      continue;
    }
    const ids = got.map((e) => e.id!);
    const want = expectedOf(store, c);
    const diff = historyDiff(ids, want);
    if (diff) {
      violations.push({
        rule: `${extra.kind}-exactly-once-in-order`,
        who: c.label,
        detail: `${who}: ${diff.detail}`,
        history: { ...diff.history, errors: tail(extra.errors, 5), resubscribes: extra.resubscribes },
      });
      continue;
    }
    if (extra.kind === 'channel') {
      const stream = store.channel.get(c.workspaceId) ?? [];
      const bySeq = new Map(stream.map((e) => [e.seq, e]));
      const wrong = got.find((e) => bySeq.get(e.id!)?.pubKey !== e.pubKey);
      if (wrong)
        violations.push({
          rule: 'channel-content',
          who: c.label,
          detail: `${who}: event ${wrong.id} carried ${wrong.pubKey}, the store's ${bySeq.get(wrong.id!)?.pubKey}`,
        });
      checked.channelClients++;
      checked.channelEvents += got.length;
    } else {
      const stream = store.inbox.get(c.workspaceId) ?? [];
      const wrong = got.find((e, i) => e.type !== stream.find((s) => s.seq === ids[i])?.type);
      if (wrong)
        violations.push({
          rule: 'inbox-content',
          who: c.label,
          detail: `${who}: event ${wrong.id} is ${wrong.type} in its history, not in the store`,
        });
      checked.inboxClients++;
      checked.inboxEvents += got.length;
    }
  }

  // Channel publishes: every acknowledged one is stored under its key once, one id per key.
  const channelBySeq = new Map<string, { key: string; pubKey: string }>();
  for (const [ws, stream] of store.channel) {
    for (const e of stream) channelBySeq.set(`${ws}/${e.seq}`, e);
    const perKey = new Map<string, number>();
    for (const e of stream) perKey.set(e.pubKey, (perKey.get(e.pubKey) ?? 0) + 1);
    for (const [key, n] of perKey)
      if (n > 1)
        violations.push({
          rule: 'channel-idempotency',
          who: key,
          detail: `channel publish ${key} is stored ${n} times in ${ws}`,
        });
  }
  const channelIdPerKey = new Map<string, string>();
  const channelCreated = new Map<string, number>();
  for (const a of channelAcks) {
    const row = channelBySeq.get(`${a.workspaceId}/${a.id}`);
    if (!row || row.pubKey !== a.key || row.key !== JSON.stringify({ postId: a.postId }))
      violations.push({
        rule: 'channel-stored',
        who: a.key,
        detail: `channel publish ${a.key} returned id ${a.id}; the store holds ${JSON.stringify(row ?? null)} there`,
      });
    const prior = channelIdPerKey.get(a.key);
    if (prior && prior !== a.id)
      violations.push({
        rule: 'channel-idempotency',
        who: a.key,
        detail: `channel key ${a.key} returned two ids: ${prior}, ${a.id}`,
      });
    channelIdPerKey.set(a.key, a.id);
    if (a.created) channelCreated.set(a.key, (channelCreated.get(a.key) ?? 0) + 1);
  }
  for (const [key, n] of channelCreated)
    if (n > 1)
      violations.push({
        rule: 'channel-idempotency',
        who: key,
        detail: `channel key ${key} reported created ${n} times`,
      });
  for (const [ws, stream] of store.channel)
    for (const [i, e] of stream.entries())
      if (e.seq !== String(i + 1)) {
        violations.push({
          rule: 'gap-free',
          who: ws,
          detail: `channel stream ${ws}: position ${i + 1} holds seq ${e.seq}`,
        });
        break;
      }

  // Inbox messages: each acknowledged receive / reply is stored once, with the returned id.
  const messagesById = new Map(store.messages.map((m) => [m.id, m]));
  const perPlatformId = new Map<string, number>();
  const perClientId = new Map<string, number>();
  for (const m of store.messages) {
    if (m.platformMessageId)
      perPlatformId.set(m.platformMessageId, (perPlatformId.get(m.platformMessageId) ?? 0) + 1);
    if (m.clientMessageId) perClientId.set(m.clientMessageId, (perClientId.get(m.clientMessageId) ?? 0) + 1);
  }
  for (const [key, n] of [...perPlatformId, ...perClientId])
    if (n > 1)
      violations.push({
        rule: 'inbox-idempotency',
        who: key,
        detail: `inbox message ${key} is stored ${n} times`,
      });
  for (const a of inboxAcks) {
    const m = messagesById.get(a.messageId);
    if (!m || m.seq !== a.eventId || m.conversationId !== a.conversationId)
      violations.push({
        rule: 'inbox-stored',
        who: a.key,
        detail: `inbox ${a.op} ${a.key} returned ${a.messageId} (event ${a.eventId}); the store holds ${JSON.stringify(m ?? null)}`,
      });
  }
  for (const [ws, stream] of store.inbox)
    for (const [i, e] of stream.entries())
      if (e.seq !== String(i + 1)) {
        violations.push({
          rule: 'gap-free',
          who: ws,
          detail: `inbox stream ${ws}: position ${i + 1} holds seq ${e.seq}`,
        });
        break;
      }

  // SLA: replay each conversation's events in stream order (every inbox write of a workspace holds
  // its stream row, so this is the order they committed in). A clock starts with an inbound message
  // while none runs and stops with a reply; each clock escalates at most once, only while it runs,
  // and a clock still running that was due before `escalateBefore` has escalated.
  const sla = { periods: 0, escalated: 0, answeredInTime: 0, stillRunningEscalated: 0 };
  const escalationsPerConversation = new Map<string, number>();
  for (const [ws, stream] of store.inbox) {
    const clocks = new Map<string, { due: string; escalated: boolean; seq: string }>();
    for (const e of stream) {
      const id = e.conversationId;
      if (!id) continue;
      const clock = clocks.get(id);
      if (e.type === 'message' && e.direction === 'inbound' && !clock) {
        clocks.set(id, { due: e.slaDueAt ?? '', escalated: false, seq: e.seq });
        sla.periods++;
      } else if (e.type === 'message' && e.direction === 'outbound') {
        if (clock && !clock.escalated) sla.answeredInTime++;
        clocks.delete(id);
      } else if (e.type === 'sla_escalated') {
        escalationsPerConversation.set(id, (escalationsPerConversation.get(id) ?? 0) + 1);
        if (!clock)
          violations.push({
            rule: 'sla',
            who: id,
            detail: `${ws}: conversation ${id} escalated at event ${e.seq} with no clock running (answered)`,
          });
        else if (clock.escalated)
          violations.push({
            rule: 'sla',
            who: id,
            detail: `${ws}: conversation ${id} escalated twice for the clock started at event ${clock.seq} (again at ${e.seq})`,
          });
        else {
          if (e.slaDueAt !== clock.due)
            violations.push({
              rule: 'sla',
              who: id,
              detail: `${ws}: escalation ${e.seq} of ${id} names due ${e.slaDueAt}, the clock's is ${clock.due}`,
            });
          if (e.at < clock.due)
            violations.push({
              rule: 'sla',
              who: id,
              detail: `${ws}: escalation ${e.seq} of ${id} at ${e.at}, before its due time ${clock.due}`,
            });
          clock.escalated = true;
          sla.escalated++;
        }
      }
    }
    for (const [id, clock] of clocks) {
      if (clock.escalated) sla.stillRunningEscalated++;
      else if (Date.parse(clock.due) < escalateBefore)
        violations.push({
          rule: 'sla',
          who: id,
          detail: `${ws}: conversation ${id} waited past its due time ${clock.due} (clock from event ${clock.seq}) and never escalated`,
        });
    }
  }
  // Each escalation sent its alert notification exactly once (keys are unique in the store).
  for (const cv of store.conversations) {
    const escalations = escalationsPerConversation.get(cv.id) ?? 0;
    const alerts = store.slaAlerts.get(cv.id) ?? 0;
    if (alerts !== escalations)
      violations.push({
        rule: 'sla-alert',
        who: cv.id,
        detail: `conversation ${cv.id}: ${escalations} escalation(s), ${alerts} SLA alert notification(s)`,
      });
  }
  // Dashboard values: one writer per key, so the store's latest is the last acknowledged set of it.
  const lastSet = new Map<string, DashAck>();
  for (const a of input.dashAcks) {
    const k = `${a.workspaceId}/${a.valueKey}`;
    const prior = lastSet.get(k);
    if (!prior || a.at >= prior.at) lastSet.set(k, a);
  }
  for (const [k, a] of lastSet) {
    const stored = store.dashboard.get(a.workspaceId)?.get(a.valueKey);
    if (!stored || stored.at !== a.at)
      violations.push({
        rule: 'dashboard-stored',
        who: k,
        detail: `dashboard ${k}: the last acknowledged set is at ${a.at}, the store's latest ${stored ? stored.at : 'none'}`,
      });
  }
  return { violations, checked, sla };
}
