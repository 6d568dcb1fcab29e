import { randomUUID } from 'node:crypto';
import { type TrackedEnvelope, TRPCError } from '@trpc/server';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { z } from 'zod';
import type { Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import type { LiveStream } from '../infra/live.js';
import { readSnapshot, type Store } from '../infra/store/db.js';
import { HotQuery } from '../infra/store/hot-query.js';
import type { DurableStream } from '../streams/durable-stream.js';
import { StreamKernel } from '../streams/stream-kernel.js';
import { canAccess } from '../auth/access.js';
import {
  type Contact,
  type Conversation,
  type ConversationStatus,
  type ConversationView,
  type InboxEvent,
  type InboxMarkReadInput,
  type InboxMessageResult,
  type InboxReadResult,
  type InboxReceiveInput,
  type InboxSendInput,
  type InboxSubscribeInput,
  type InboxUpdateInput,
  inboxConversationsInput,
  inboxMessagesInput,
  inboxReceiveInput,
  type InboxConversationsInput,
  type InboxMessagesInput,
  type Message,
  type Page,
} from './inbox.schema.js';
import type { InboxTables } from './inbox.tables.js';

export const inboxTopic = (workspaceId: string) => `inbox:${workspaceId}`;

/** The inbox stream on a kernel: events in `pulse_inbox_events`, filtered by conversation. */
export function defineInboxStream(kernel: StreamKernel, retention: number): DurableStream<InboxEvent> {
  return kernel.define<InboxEvent>({
    name: 'inbox',
    retention,
    recipientOf: (event) => ('conversationId' in event ? event.conversationId : null),
    table: {
      table: 'pulse_inbox_events',
      keyColumn: 'workspace_id',
      keyValue: 'workspace',
      recipientColumn: 'conversation_id',
      payloadColumn: 'event',
    },
  });
}

/** What the inbox asks of whoever delivers SLA alerts (the notifications service, wired in server.ts). */
export interface SlaAlert {
  workspaceId: string;
  /** The assignee, or null: the whole workspace is alerted. */
  userId: string | null;
  conversation: Conversation;
  slaMs: number;
  /** Stable per waiting period: delivering the same key twice must deliver once. */
  idempotencyKey: string;
}

export interface InboxServiceOptions {
  hub: Hub;
  store: Store;
  /** Default SLA (ms); admins override it per workspace. */
  slaMs: number;
  /** How often this node looks for breached SLAs; 0 disables the scheduler. */
  slaPollMs: number;
  /** Events per workspace kept for replay. */
  retention: number;
  /** Sends the `alert` notification of an escalation. */
  alert?: (alert: SlaAlert) => Promise<void>;
  /**
   * An escalation whose alert is still owed this long after it was claimed (the claiming node died
   * or the send failed) is alerted again by any node; the idempotency key keeps it to one alert.
   * Default: 5 s or five poll intervals, whichever is longer.
   */
  alertRetryMs?: number;
  /** Reports background failures (the poller never throws). */
  onError?: (error: unknown) => void;
  /** The node's durable-stream kernel (default: one of its own, closed by `close()`). */
  streams?: StreamKernel;
}

type Db = Kysely<InboxTables>;
type Trx = Transaction<InboxTables>;
type ConversationRow = InboxTables['pulse_inbox_conversations'];
type MessageRow = InboxTables['pulse_inbox_messages'];
type AlertRow = InboxTables['pulse_inbox_sla_alerts'];

/** Thrown inside a transaction to roll it back and hand a value out (no stream id is used up). */
class Rollback<T> {
  constructor(readonly value: T) {}
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The later of two ISO-8601 UTC times (they compare as strings). */
function laterIso(a: string, b: string): string {
  if (a > b) return a;
  return b;
}
const num = (value: number | string | null): number | null => (value === null ? null : Number(value));

function toConversation(row: ConversationRow): Conversation {
  const due = num(row.sla_due_at);
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    platform: row.platform as Conversation['platform'],
    externalId: row.external_id,
    contact: JSON.parse(row.contact) as Contact,
    status: row.status as ConversationStatus,
    assigneeId: row.assignee_id,
    createdAt: row.created_at,
    lastMessageAt: row.last_message_at,
    slaDueAt: due === null ? null : iso(due),
    escalatedAt: row.escalated_at,
  };
}

function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    workspaceId: row.workspace_id,
    direction: row.direction as Message['direction'],
    authorId: row.author_id,
    authorName: row.author_name,
    body: row.body,
    at: row.at,
    platformMessageId: row.platform_message_id,
    clientMessageId: row.client_message_id,
    eventId: String(row.seq),
  };
}

const notFound = () => new TRPCError({ code: 'NOT_FOUND', message: 'Conversation not found' });
const badCursor = () => new TRPCError({ code: 'BAD_REQUEST', message: 'Invalid cursor' });

// NOTE: the statements of every `receive` (and the message insert of every `send`): hot, built and
// compiled once (bench/src/durable-writes.ts, `inbox.receive`).
const slaOf = new HotQuery((db, workspaceId: string) =>
  (db as Db).selectFrom('pulse_inbox_settings').select('sla_ms').where('workspace_id', '=', workspaceId),
);
const conversationByExternalId = new HotQuery(
  (db, workspaceId: string, platform: string, externalId: string) =>
    (db as Db)
      .selectFrom('pulse_inbox_conversations')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('platform', '=', platform)
      .where('external_id', '=', externalId),
);
const messageByPlatformId = new HotQuery((db, conversationId: string, platformMessageId: string) =>
  (db as Db)
    .selectFrom('pulse_inbox_messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('platform_message_id', '=', platformMessageId),
);
const insertConversationQuery = new HotQuery(
  (
    db,
    id: string,
    workspaceId: string,
    platform: string,
    externalId: string,
    contact: string,
    status: string,
    assigneeId: string | null,
    createdAt: string,
    lastMessageAt: string,
    slaStartedAt: number | string | null,
    slaDueAt: number | string | null,
    escalatedAt: string | null,
    alertedAt: string | null,
  ) =>
    (db as Db).insertInto('pulse_inbox_conversations').values({
      id,
      workspace_id: workspaceId,
      platform,
      external_id: externalId,
      contact,
      status,
      assignee_id: assigneeId,
      created_at: createdAt,
      last_message_at: lastMessageAt,
      sla_started_at: slaStartedAt,
      sla_due_at: slaDueAt,
      escalated_at: escalatedAt,
      alerted_at: alertedAt,
    }),
);
const insertConversation = (trx: Trx, r: ConversationRow) =>
  insertConversationQuery.execute(
    trx,
    r.id,
    r.workspace_id,
    r.platform,
    r.external_id,
    r.contact,
    r.status,
    r.assignee_id,
    r.created_at,
    r.last_message_at,
    r.sla_started_at,
    r.sla_due_at,
    r.escalated_at,
    r.alerted_at,
  );
const insertMessageQuery = new HotQuery(
  (
    db,
    id: string,
    workspaceId: string,
    conversationId: string,
    seq: number | string,
    direction: string,
    authorId: string | null,
    authorName: string,
    body: string,
    at: string,
    platformMessageId: string | null,
    clientMessageId: string | null,
  ) =>
    (db as Db).insertInto('pulse_inbox_messages').values({
      id,
      workspace_id: workspaceId,
      conversation_id: conversationId,
      seq,
      direction,
      author_id: authorId,
      author_name: authorName,
      body,
      at,
      platform_message_id: platformMessageId,
      client_message_id: clientMessageId,
    }),
);
const insertMessage = (trx: Trx, m: MessageRow) =>
  insertMessageQuery.execute(
    trx,
    m.id,
    m.workspace_id,
    m.conversation_id,
    m.seq,
    m.direction,
    m.author_id,
    m.author_name,
    m.body,
    m.at,
    m.platform_message_id,
    m.client_message_id,
  );
/** A later inbound message while the clock runs: the contact, status and last message time move. */
const touchConversation = new HotQuery(
  (db, contact: string, status: string, lastMessageAt: string, id: string) =>
    (db as Db)
      .updateTable('pulse_inbox_conversations')
      .set({ contact, status, last_message_at: lastMessageAt })
      .where('id', '=', id)
      .returningAll(),
);
/** An inbound message while no clock runs: as above, and a new clock starts. */
const restartConversationClock = new HotQuery(
  (
    db,
    contact: string,
    status: string,
    lastMessageAt: string,
    startedAt: number,
    dueAt: number,
    id: string,
  ) =>
    (db as Db)
      .updateTable('pulse_inbox_conversations')
      .set({
        contact,
        status,
        last_message_at: lastMessageAt,
        sla_started_at: startedAt,
        sla_due_at: dueAt,
        escalated_at: null,
        alerted_at: null,
      })
      .where('id', '=', id)
      .returningAll(),
);

/**
 * The shared inbox: conversations and messages in the store, a durable event stream per workspace
 * (`inbox:<workspaceId>`), read watermarks per user, and SLA escalation claimed in the store.
 */
export class InboxService {
  private readonly db: Db;
  private readonly kernel: StreamKernel;
  private readonly ownsKernel: boolean;
  private readonly stream: DurableStream<InboxEvent>;
  private readonly poller: NodeJS.Timeout | undefined;
  private polling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: InboxServiceOptions) {
    this.db = opts.store.db.withTables<InboxTables>();
    this.ownsKernel = !opts.streams;
    this.kernel =
      opts.streams ??
      new StreamKernel({ store: opts.store, hub: opts.hub, onError: (error) => opts.onError?.(error) });
    this.stream = defineInboxStream(this.kernel, opts.retention);
    if (opts.slaPollMs > 0) {
      this.poller = setInterval(() => {
        if (this.polling || this.closed) return;
        this.polling = this.escalateDue()
          .then(() => undefined)
          .catch((error: unknown) => opts.onError?.(error))
          .finally(() => {
            this.polling = null;
          });
      }, opts.slaPollMs);
      this.poller.unref();
    }
  }

  /** An incoming platform message: creates the conversation when new and starts its SLA clock. */
  receive(raw: InboxReceiveInput): Promise<InboxMessageResult> {
    return this.receiveValidated(inboxReceiveInput.parse(raw));
  }

  /**
   * `receive` for a caller that validated the input already (the router, whose input parser is
   * `inboxReceiveInput`), so it is not parsed a second time.
   */
  async receiveValidated(input: z.output<typeof inboxReceiveInput>): Promise<InboxMessageResult> {
    const { workspaceId } = input;
    const now = Date.now();
    const at = input.at ? new Date(input.at).toISOString() : iso(now);
    const contact = JSON.stringify(input.contact);
    return this.write(async (trx) => {
      let seq = await this.stream.nextId(trx, workspaceId);
      let [row] = (await conversationByExternalId.execute(trx, workspaceId, input.platform, input.externalId))
        .rows;
      if (row && input.platformMessageId) {
        const [existing] = (await messageByPlatformId.execute(trx, row.id, input.platformMessageId)).rows;
        if (existing) {
          throw new Rollback({
            conversation: toConversation(row),
            message: toMessage(existing),
            created: false,
          });
        }
      }
      if (!row) {
        // NOTE: the SLA is read only where a clock starts (here, or below when none runs).
        const slaMs = await this.slaFor(workspaceId, trx);
        row = {
          id: `cv_${randomUUID()}`,
          workspace_id: workspaceId,
          platform: input.platform,
          external_id: input.externalId,
          contact,
          status: 'open',
          assignee_id: null,
          created_at: iso(now),
          last_message_at: at,
          sla_started_at: now,
          sla_due_at: now + slaMs,
          escalated_at: null,
          alerted_at: null,
        };
        await insertConversation(trx, row);
        await this.record(trx, String(seq), {
          type: 'conversation',
          workspaceId,
          at: iso(now),
          conversationId: row.id,
          change: 'created',
          conversation: toConversation(row),
          byUserId: null,
        });
        seq = await this.stream.nextId(trx, workspaceId);
      } else {
        const status = row.status === 'closed' ? 'open' : row.status;
        const lastMessageAt = laterIso(at, row.last_message_at);
        // NOTE: the clock runs from the oldest unanswered inbound message; later ones do not restart it.
        const [updated] =
          row.sla_due_at !== null
            ? (await touchConversation.execute(trx, contact, status, lastMessageAt, row.id)).rows
            : (
                await restartConversationClock.execute(
                  trx,
                  contact,
                  status,
                  lastMessageAt,
                  now,
                  now + (await this.slaFor(workspaceId, trx)),
                  row.id,
                )
              ).rows;
        if (!updated) throw new Error(`Conversation ${row.id} vanished inside its write`);
        row = updated;
      }
      return this.appendMessage(trx, seq, row, {
        direction: 'inbound',
        author_id: null,
        author_name: input.contact.name,
        body: input.body,
        at,
        platform_message_id: input.platformMessageId ?? null,
        client_message_id: null,
      });
    });
  }

  /** A member's reply, idempotent by `clientMessageId`; it stops the SLA clock. */
  async send(principal: Principal, input: InboxSendInput): Promise<InboxMessageResult> {
    const current = await this.conversationFor(principal, input.conversationId);
    const workspaceId = current.workspace_id;
    return this.write(async (trx) => {
      const seq = await this.stream.nextId(trx, workspaceId);
      const existing = await trx
        .selectFrom('pulse_inbox_messages')
        .selectAll()
        .where('conversation_id', '=', current.id)
        .where('author_id', '=', principal.userId)
        .where('client_message_id', '=', input.clientMessageId)
        .executeTakeFirst();
      if (existing) {
        const row = await this.conversationRow(current.id, trx);
        throw new Rollback({
          conversation: toConversation(row!),
          message: toMessage(existing),
          created: false,
        });
      }
      const at = iso(Date.now());
      const row = await trx
        .updateTable('pulse_inbox_conversations')
        .set({ last_message_at: at, sla_started_at: null, sla_due_at: null })
        .where('id', '=', current.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return this.appendMessage(trx, seq, row, {
        direction: 'outbound',
        author_id: principal.userId,
        author_name: principal.name,
        body: input.body,
        at,
        platform_message_id: null,
        client_message_id: input.clientMessageId,
      });
    });
  }

  /** Conversations of a workspace, most recent first, with the caller's unread counts. */
  async conversations(principal: Principal, raw: InboxConversationsInput): Promise<Page<ConversationView>> {
    const input = inboxConversationsInput.parse(raw);
    // NOTE: the page and the stream position in one snapshot (`asOf`, see `readSnapshot`).
    return readSnapshot(this.opts.store, this.db, async (trx) => {
      const asOf = await this.stream.head(input.workspaceId, trx);
      return { ...(await this.conversationsPage(trx, principal, input)), asOf };
    });
  }

  private async conversationsPage(
    db: Db | Transaction<InboxTables>,
    principal: Principal,
    input: z.output<typeof inboxConversationsInput>,
  ): Promise<Omit<Page<ConversationView>, 'asOf'>> {
    let query = db
      .selectFrom('pulse_inbox_conversations as c')
      .selectAll('c')
      .select(unreadCount(principal.userId).as('unread_count'))
      .where('c.workspace_id', '=', input.workspaceId);
    if (input.status) query = query.where('c.status', '=', input.status);
    if (input.assigneeId === null) query = query.where('c.assignee_id', 'is', null);
    else if (input.assigneeId !== undefined) query = query.where('c.assignee_id', '=', input.assigneeId);
    if (input.cursor) {
      const [at, id] = decodeCursor(input.cursor);
      query = query.where((eb) =>
        eb.or([
          eb('c.last_message_at', '<', at),
          eb.and([eb('c.last_message_at', '=', at), eb('c.id', '<', id)]),
        ]),
      );
    }
    const rows = await query
      .orderBy('c.last_message_at', 'desc')
      .orderBy('c.id', 'desc')
      .limit(input.limit + 1)
      .execute();
    const page = rows.slice(0, input.limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => ({ ...toConversation(row), unreadCount: Number(row.unread_count) })),
      nextCursor: rows.length > input.limit && last ? encodeCursor(last.last_message_at, last.id) : null,
    };
  }

  /** One conversation with the caller's unread count (NOT_FOUND outside the caller's workspaces). */
  async conversation(principal: Principal, conversationId: string): Promise<ConversationView> {
    const row = await this.conversationFor(principal, conversationId);
    return { ...toConversation(row), unreadCount: await this.unread(principal.userId, row.id) };
  }

  /** The newest page of a conversation's messages in chronological order; `nextCursor` loads older ones. */
  async messages(principal: Principal, raw: InboxMessagesInput): Promise<Page<Message>> {
    const input = inboxMessagesInput.parse(raw);
    const conversation = await this.conversationFor(principal, input.conversationId);
    return readSnapshot(this.opts.store, this.db, async (trx) => {
      const asOf = await this.stream.head(conversation.workspace_id, trx);
      return { ...(await this.messagesPage(trx, conversation.id, input)), asOf };
    });
  }

  private async messagesPage(
    db: Db | Transaction<InboxTables>,
    conversationId: string,
    input: z.output<typeof inboxMessagesInput>,
  ): Promise<Omit<Page<Message>, 'asOf'>> {
    let query = db
      .selectFrom('pulse_inbox_messages')
      .selectAll()
      .where('conversation_id', '=', conversationId);
    if (input.cursor) {
      if (!/^[1-9]\d{0,15}$/.test(input.cursor)) throw badCursor();
      query = query.where('seq', '<', Number(input.cursor));
    }
    const rows = await query
      .orderBy('seq', 'desc')
      .limit(input.limit + 1)
      .execute();
    const page = rows.slice(0, input.limit);
    const oldest = page.at(-1);
    return {
      items: page.reverse().map(toMessage),
      nextCursor: rows.length > input.limit && oldest ? String(oldest.seq) : null,
    };
  }

  /** Changes status and/or assignee. Closing a conversation stops its SLA clock. */
  async update(principal: Principal, input: InboxUpdateInput): Promise<Conversation> {
    const current = await this.conversationFor(principal, input.conversationId);
    const workspaceId = current.workspace_id;
    return this.write(async (trx) => {
      const id = String(await this.stream.nextId(trx, workspaceId));
      const row = await trx
        .updateTable('pulse_inbox_conversations')
        .set({
          ...(input.status ? { status: input.status } : {}),
          ...(input.assigneeId !== undefined ? { assignee_id: input.assigneeId } : {}),
          ...(input.status === 'closed' ? { sla_started_at: null, sla_due_at: null } : {}),
        })
        .where('id', '=', current.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const conversation = toConversation(row);
      await this.record(trx, id, {
        type: 'conversation',
        workspaceId,
        at: iso(Date.now()),
        conversationId: row.id,
        change: 'updated',
        conversation,
        byUserId: principal.userId,
      });
      return conversation;
    });
  }

  /** Moves the caller's read watermark forward (never back) and sends a `read` receipt. */
  async markRead(principal: Principal, input: InboxMarkReadInput): Promise<InboxReadResult> {
    const conversation = await this.conversationFor(principal, input.conversationId);
    const message = await this.db
      .selectFrom('pulse_inbox_messages')
      .select(['id', 'seq'])
      .where('id', '=', input.upToMessageId)
      .where('conversation_id', '=', conversation.id)
      .executeTakeFirst();
    if (!message) throw new TRPCError({ code: 'NOT_FOUND', message: 'Message not found' });
    const workspaceId = conversation.workspace_id;
    const userId = principal.userId;
    const readAt = iso(Date.now());
    await this.write(async (trx) => {
      const id = String(await this.stream.nextId(trx, workspaceId));
      const moved = await trx
        .insertInto('pulse_inbox_reads')
        .values({
          conversation_id: conversation.id,
          user_id: userId,
          seq: Number(message.seq),
          message_id: message.id,
          read_at: readAt,
        })
        .onConflict((oc) =>
          oc
            .columns(['conversation_id', 'user_id'])
            .doUpdateSet((eb) => ({
              seq: eb.ref('excluded.seq'),
              message_id: eb.ref('excluded.message_id'),
              read_at: eb.ref('excluded.read_at'),
            }))
            .where('pulse_inbox_reads.seq', '<', Number(message.seq)),
        )
        .returning('seq')
        .executeTakeFirst();
      if (!moved) throw new Rollback(undefined);
      await this.record(trx, id, {
        type: 'read',
        workspaceId,
        at: readAt,
        conversationId: conversation.id,
        userId,
        upToMessageId: message.id,
      });
    });
    const watermark = await this.db
      .selectFrom('pulse_inbox_reads')
      .select('message_id')
      .where('conversation_id', '=', conversation.id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return {
      conversationId: conversation.id,
      upToMessageId: watermark?.message_id ?? message.id,
      unreadCount: await this.unread(userId, conversation.id),
    };
  }

  /** Sets (or, with null, clears) a workspace's SLA. Running clocks keep the due time they started with. */
  async setSla(workspaceId: string, slaMs: number | null): Promise<{ workspaceId: string; slaMs: number }> {
    if (slaMs === null) {
      await this.db.deleteFrom('pulse_inbox_settings').where('workspace_id', '=', workspaceId).execute();
    } else {
      await this.db
        .insertInto('pulse_inbox_settings')
        .values({ workspace_id: workspaceId, sla_ms: slaMs })
        .onConflict((oc) => oc.column('workspace_id').doUpdateSet({ sla_ms: slaMs }))
        .execute();
    }
    return { workspaceId, slaMs: await this.slaFor(workspaceId) };
  }

  /** The SLA in force for a workspace. */
  async slaFor(workspaceId: string, db: Db = this.db): Promise<number> {
    const [row] = (await slaOf.execute(db, workspaceId)).rows;
    return row ? Number(row.sla_ms) : this.opts.slaMs;
  }

  /** Durable, resumable events of a workspace (optionally one conversation). */
  onEvent(input: InboxSubscribeInput, signal?: AbortSignal) {
    const { workspaceId, conversationId } = input;
    return this.stream.subscribe({
      workspaceId,
      lastEventId: input.lastEventId,
      filter: conversationId ? { recipient: conversationId } : {},
      signal,
    }) as LiveStream<TrackedEnvelope<InboxEvent>>;
  }

  /**
   * Escalates every conversation whose SLA ran out (the per-node scheduler calls this). Each one is
   * claimed with a conditional UPDATE in the store, so with any number of nodes exactly one wins.
   * Returns the conversations this call escalated.
   */
  async escalateDue(now = Date.now()): Promise<Conversation[]> {
    const due = await this.db
      .selectFrom('pulse_inbox_conversations')
      .select(['id', 'workspace_id'])
      .where('sla_due_at', '<=', now)
      .where('escalated_at', 'is', null)
      .orderBy('sla_due_at')
      .limit(100)
      .execute();
    const escalated: Conversation[] = [];
    for (const candidate of due) {
      if (this.closed) break;
      const conversation = await this.escalate(candidate.workspace_id, candidate.id, now).catch(
        (error: unknown) => {
          this.opts.onError?.(error);
          return null;
        },
      );
      if (conversation) escalated.push(conversation);
    }
    const retryMs = this.opts.alertRetryMs ?? Math.max(5_000, this.opts.slaPollMs * 5);
    // NOTE: from the outbox, not the conversation: a reply or a new clock since the claim must not
    // drop the alert it owes.
    const owed = await this.db
      .selectFrom('pulse_inbox_sla_alerts')
      .selectAll()
      .where('escalated_at', '<=', now - retryMs)
      .orderBy('escalated_at')
      .limit(100)
      .execute();
    for (const row of owed) {
      if (this.closed) break;
      await this.deliverAlert(row).catch((error: unknown) => this.opts.onError?.(error));
    }
    return escalated;
  }

  /** Timers this service holds (leak checks). */
  stats() {
    return { poller: this.poller !== undefined && !this.closed };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    await this.polling;
    if (this.ownsKernel) await this.kernel.close();
  }

  private async escalate(
    workspaceId: string,
    conversationId: string,
    now: number,
  ): Promise<Conversation | null> {
    const claimed = await this.write(async (trx) => {
      const id = String(await this.stream.nextId(trx, workspaceId));
      // NOTE: the claim. A reply (clock cleared), a new clock (due later) or another node's claim
      // (escalated_at set) all make this update touch no row.
      const row = await trx
        .updateTable('pulse_inbox_conversations')
        .set({ escalated_at: iso(now) })
        .where('id', '=', conversationId)
        .where('escalated_at', 'is', null)
        .where('sla_due_at', 'is not', null)
        .where('sla_due_at', '<=', now)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw new Rollback(null);
      const conversation = toConversation(row);
      const slaMs = Number(row.sla_due_at) - Number(row.sla_started_at);
      await this.record(trx, id, {
        type: 'sla_escalated',
        workspaceId,
        at: iso(now),
        conversationId,
        conversation,
        notifiedUserId: row.assignee_id,
        slaMs,
      });
      // The alert this claim owes, in the same transaction: sent below, or by any node's poller.
      const alert: AlertRow = {
        id: `inbox-sla:${row.id}:${Number(row.sla_started_at)}`,
        workspace_id: workspaceId,
        conversation_id: conversationId,
        user_id: row.assignee_id,
        sla_ms: slaMs,
        conversation: JSON.stringify(conversation),
        escalated_at: now,
      };
      await trx.insertInto('pulse_inbox_sla_alerts').values(alert).execute();
      return { conversation, alert };
    });
    if (!claimed) return null;
    await this.deliverAlert(claimed.alert);
    return claimed.conversation;
  }

  /**
   * Sends the alert an escalation owes, then records it: the outbox row goes, the conversation's
   * `alerted_at` is set if it is still in that waiting period. Left owed on failure (retried later);
   * the idempotency key keeps a retry after a send that did go through to one alert.
   */
  private async deliverAlert(alert: AlertRow): Promise<void> {
    const startedAt = Number(alert.id.slice(alert.id.lastIndexOf(':') + 1));
    let conversation: Conversation | undefined;
    if (alert.conversation) conversation = JSON.parse(alert.conversation) as Conversation;
    else {
      // Carried over by the migration: the conversation as it is now.
      const row = await this.db
        .selectFrom('pulse_inbox_conversations')
        .selectAll()
        .where('id', '=', alert.conversation_id)
        .executeTakeFirst();
      if (row) conversation = toConversation(row);
    }
    if (conversation)
      await this.opts.alert?.({
        workspaceId: alert.workspace_id,
        userId: alert.user_id,
        conversation,
        slaMs: Number(alert.sla_ms),
        idempotencyKey: alert.id,
      });
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('pulse_inbox_sla_alerts').where('id', '=', alert.id).execute();
      await trx
        .updateTable('pulse_inbox_conversations')
        .set({ alerted_at: iso(Date.now()) })
        .where('id', '=', alert.conversation_id)
        .where('sla_started_at', '=', startedAt)
        .where('escalated_at', 'is not', null)
        .where('alerted_at', 'is', null)
        .execute();
    });
  }

  /**
   * Runs one write transaction of a workspace's stream; the kernel publishes its events after commit.
   * Every transaction takes a stream id first (on PostgreSQL that locks the stream row until commit),
   * so writers of one workspace run one at a time and never deadlock on conversation rows.
   */
  private async write<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    try {
      return await this.kernel.transaction(this.db, fn);
    } catch (error) {
      if (error instanceof Rollback) return error.value as T;
      throw error;
    }
  }

  /** Stores one message of `row`'s conversation and records its `message` event (same transaction). */
  private async appendMessage(
    trx: Trx,
    seq: number,
    row: ConversationRow,
    fields: Omit<MessageRow, 'id' | 'workspace_id' | 'conversation_id' | 'seq'>,
  ): Promise<InboxMessageResult> {
    const stored: MessageRow = {
      id: `msg_${randomUUID()}`,
      workspace_id: row.workspace_id,
      conversation_id: row.id,
      seq,
      ...fields,
    };
    await insertMessage(trx, stored);
    const conversation = toConversation(row);
    const message = toMessage(stored);
    await this.record(trx, String(seq), {
      type: 'message',
      workspaceId: row.workspace_id,
      at: fields.at,
      conversationId: row.id,
      message,
      conversation,
    });
    return { conversation, message, created: true };
  }

  /** Appends one event with the stream id `id` taken earlier in the same transaction. */
  private async record(trx: Trx, id: string, event: InboxEvent): Promise<void> {
    await this.stream.append(trx, event.workspaceId, event, { seq: Number(id) });
  }

  /** Loads a conversation the caller may see; NOT_FOUND otherwise (never reveals other workspaces). */
  private async conversationFor(principal: Principal, conversationId: string): Promise<ConversationRow> {
    const row = await this.conversationRow(conversationId);
    if (!row || !canAccess(principal, row.workspace_id, 'member')) throw notFound();
    return row;
  }

  private conversationRow(id: string, db: Db = this.db): Promise<ConversationRow | undefined> {
    return db.selectFrom('pulse_inbox_conversations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private async unread(userId: string, conversationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('pulse_inbox_conversations as c')
      .select(unreadCount(userId).as('n'))
      .where('c.id', '=', conversationId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

/** Messages of conversation `c` after the user's watermark that the user did not write. */
function unreadCount(userId: string) {
  return sql<number | string>`(
    select count(*) from pulse_inbox_messages m
    where m.conversation_id = c.id
      and (m.author_id is null or m.author_id <> ${userId})
      and m.seq > coalesce(
        (select r.seq from pulse_inbox_reads r where r.conversation_id = c.id and r.user_id = ${userId}), 0))`;
}

function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')) {
      return value as [string, string];
    }
  } catch {
    // falls through to the error below
  }
  throw badCursor();
}

export type { LiveStream };
