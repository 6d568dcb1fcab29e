import { randomUUID } from 'node:crypto';
import { TRPCError, type TrackedEnvelope } from '@trpc/server';
import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import { type LiveItem, type LiveStream, liveDurable } from '../infra/live.js';
import type { Store } from '../infra/store/db.js';
import { nextSeq } from '../infra/store/streams.js';
import { assertAccess } from '../trpc.js';
import {
  notificationEventIdSchema,
  type Notification,
  type NotificationContentInput,
  notificationContentSchema,
  type NotificationEvent,
  type NotificationListInput,
  notificationListInput,
  type NotificationPage,
  type NotificationReadResult,
  type StoredNotification,
} from './notifications.schema.js';
import type { NotificationTables } from './notifications.store.js';

export interface NotificationServiceOptions {
  store: Store;
  hub: Hub;
  /** Events kept per workspace stream for replay; an older resume point gets a `reset`. */
  retention: number;
  /** Reports failures that cannot reach a caller (e.g. the bus was down after a commit). */
  onError?: (error: unknown, context: string) => void;
}

/** Who sends: a verified principal (checked for admin/service access) or trusted server code. */
export type NotificationSender = Principal | 'system';

/**
 * The namespace of a sender's idempotency keys: `user:<id>`, `service:<name>`, or `system` for
 * trusted server code (the publisher, SLA alerts). No token maps to `system`, so a client can never
 * claim (or read back) a key that server code uses.
 */
export function senderKeyOf(sender: NotificationSender): string {
  if (sender === 'system') return 'system';
  return `${sender.service ? 'service' : 'user'}:${sender.userId}`;
}

export interface SendResult {
  notification: StoredNotification;
  /** false when `idempotencyKey` matched an earlier notification: nothing new was delivered. */
  created: boolean;
}

/** Hub topic and stream key of a workspace's notification stream. */
export const notificationsTopic = (workspaceId: string) => `notifications:${workspaceId}`;

type Db = Kysely<NotificationTables>;
type Trx = Transaction<NotificationTables>;
type NotificationRow = NotificationTables['pulse_notifications'];

const now = () => new Date().toISOString();

/** Thrown inside a send transaction when its idempotency key was taken meanwhile: roll back, return the winner. */
class DuplicateKey extends Error {}

/**
 * Durable notifications: one gap-free, strictly increasing event stream per workspace
 * (`notifications:<workspaceId>`), persisted before it is published, resumable with `lastEventId`.
 *
 * Publication goes through a relay: after a write commits, the relay locks the workspace's
 * publication cursor, publishes every committed event past it in id order and moves it. So events
 * reach the bus in id order even with concurrent writers on several nodes, and an event whose
 * publication was interrupted (crash, bus outage) goes out with the next write.
 */
export class NotificationService {
  private readonly db: Db;
  private readonly relays = new Map<
    string,
    { running: Promise<void> | null; queued: Promise<void> | null }
  >();

  constructor(private readonly opts: NotificationServiceOptions) {
    this.db = opts.store.db.withTables<NotificationTables>();
  }

  /**
   * Accepts one notification: validates it, checks the sender (admin of the workspace or a service;
   * `'system'` for trusted server code), stores it with its event in one transaction, then publishes.
   * With an `idempotencyKey` this sender already used in the workspace, returns that notification and
   * delivers nothing. Keys are scoped per sender: another sender's key is a different key, so a repeat
   * only ever returns a notification the caller sent itself.
   */
  async send(
    sender: NotificationSender,
    input: { workspaceId: string } & NotificationContentInput,
  ): Promise<SendResult> {
    const workspaceId = parseOrThrow(z.object({ workspaceId: z.string().min(1) }), input).workspaceId;
    if (sender !== 'system') assertAccess(sender, workspaceId, 'admin');
    const content = parseOrThrow(notificationContentSchema, input);

    const senderKey = senderKeyOf(sender);
    if (content.idempotencyKey) {
      const existing = await this.findByKey(this.db, workspaceId, senderKey, content.idempotencyKey);
      if (existing) return { notification: existing, created: false };
    }

    const id = randomUUID();
    const createdAt = now();
    let stored: StoredNotification;
    try {
      stored = await this.db.transaction().execute(async (trx) => {
        const seq = await nextSeq(trx, notificationsTopic(workspaceId));
        const eventId = String(seq);
        const notification = {
          id,
          workspaceId,
          userId: content.userId ?? null,
          type: content.type,
          title: content.title,
          body: content.body ?? null,
          priority: content.priority,
          data: content.data,
          createdAt,
          eventId,
        } as StoredNotification;
        const inserted = await trx
          .insertInto('pulse_notifications')
          .values({
            id,
            workspace_id: workspaceId,
            seq,
            user_id: notification.userId,
            type: notification.type,
            title: notification.title,
            body: notification.body,
            data: JSON.stringify(notification.data),
            priority: notification.priority,
            sender: senderKey,
            idempotency_key: content.idempotencyKey ?? null,
            created_at: createdAt,
          })
          .onConflict((oc) => oc.columns(['workspace_id', 'sender', 'idempotency_key']).doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!inserted) throw new DuplicateKey();
        const event: NotificationEvent = {
          type: 'notification',
          workspaceId,
          at: createdAt,
          userId: notification.userId,
          notification: { ...notification, readAt: null },
        };
        await this.appendEvent(trx, workspaceId, seq, notification.userId, event);
        return notification;
      });
    } catch (error) {
      if (error instanceof DuplicateKey && content.idempotencyKey) {
        const existing = await this.findByKey(this.db, workspaceId, senderKey, content.idempotencyKey);
        if (existing) return { notification: existing, created: false };
      }
      throw storeError(error, 'Could not store the notification');
    }
    await this.relay(workspaceId);
    return { notification: stored, created: true };
  }

  /** The user's notifications (theirs and workspace-wide), newest first, with their read state. */
  async list(userId: string, rawInput: NotificationListInput): Promise<NotificationPage> {
    const input = parseOrThrow(notificationListInput, rawInput);
    let query = this.db
      .selectFrom('pulse_notifications as n')
      .leftJoin('pulse_notification_reads as r', (join) =>
        join.onRef('r.notification_id', '=', 'n.id').on('r.user_id', '=', userId),
      )
      .selectAll('n')
      .select('r.read_at')
      .where('n.workspace_id', '=', input.workspaceId)
      .where((eb) => eb.or([eb('n.user_id', 'is', null), eb('n.user_id', '=', userId)]));
    if (input.cursor) query = query.where('n.seq', '<', Number(input.cursor));
    if (input.unreadOnly) query = query.where('r.read_at', 'is', null);
    if (input.types) query = query.where('n.type', 'in', input.types);
    const rows = await query
      .orderBy('n.seq', 'desc')
      .limit(input.limit + 1)
      .execute();
    const page = rows.slice(0, input.limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => ({ ...toNotification(row), readAt: row.read_at ?? null }) as Notification),
      nextCursor: rows.length > input.limit && last ? String(last.seq) : null,
    };
  }

  /** How many of the user's notifications (theirs and workspace-wide) are unread. */
  unreadCount(userId: string, workspaceId: string): Promise<number> {
    return this.countUnread(this.db, userId, workspaceId);
  }

  /**
   * Marks the given notifications read for this user. Ids that are unknown, already read, or
   * addressed to someone else are ignored (never an error, so nothing leaks about them).
   */
  async markRead(
    userId: string,
    input: { workspaceId: string; ids: string[] },
  ): Promise<NotificationReadResult> {
    const ids = [...new Set(input.ids)];
    return this.markWith(userId, input.workspaceId, false, (trx) =>
      this.visibleUnread(trx, userId, input.workspaceId).where('n.id', 'in', ids).execute(),
    );
  }

  /** Marks every notification the user can see in the workspace read. */
  markAllRead(userId: string, workspaceId: string): Promise<NotificationReadResult> {
    return this.markWith(userId, workspaceId, true, (trx) =>
      this.visibleUnread(trx, userId, workspaceId).execute(),
    );
  }

  /**
   * The user's live stream: with `lastEventId`, every missed event addressed to them (or to the
   * whole workspace) in order, then live events; a `reset` first when the resume point is older
   * than the retention window.
   */
  subscribe(opts: {
    userId: string;
    workspaceId: string;
    lastEventId?: string | null;
    signal?: AbortSignal;
  }): LiveStream<TrackedEnvelope<NotificationEvent>> {
    const { userId, workspaceId } = opts;
    const lastEventId = opts.lastEventId ?? undefined;
    if (lastEventId !== undefined) parseOrThrow(notificationEventIdSchema, lastEventId);
    return liveDurable<NotificationEvent>(this.opts.hub, {
      topic: notificationsTopic(workspaceId),
      // NOTE: read events are addressed to their user; notifications to their recipient or everyone.
      filter: (event) =>
        event.type === 'reset' || event.type === 'sync' || event.userId === null || event.userId === userId,
      initial: (afterId) => this.replay(userId, workspaceId, afterId),
      lastEventId,
      signal: opts.signal,
    });
  }

  /** The stream's newest event id ("0" before the first event). */
  async headId(workspaceId: string): Promise<string> {
    const row = await this.db
      .selectFrom('pulse_streams')
      .select('seq')
      .where('stream_key', '=', notificationsTopic(workspaceId))
      .executeTakeFirst();
    return String(row ? Number(row.seq) : 0);
  }

  private async replay(
    userId: string,
    workspaceId: string,
    afterId: string | undefined,
  ): Promise<Array<LiveItem<NotificationEvent>>> {
    const head = Number(await this.headId(workspaceId));
    if (afterId === undefined) {
      // NOTE: without a resume point the client would have none until its first event, and a drop
      // before it would lose what came meanwhile: hand it the head as its resume point.
      const sync: NotificationEvent = { type: 'sync', workspaceId, at: now(), headId: String(head) };
      return [{ id: String(head), data: sync }];
    }
    const after = Number(afterId);
    if (after > head) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `lastEventId ${afterId} is ahead of this stream (head ${head}); subscribe without it`,
      });
    }
    if (after === head) return [];
    const oldest = await this.db
      .selectFrom('pulse_notification_events')
      .select((eb) => eb.fn.min('seq').as('seq'))
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    const oldestSeq = oldest?.seq == null ? undefined : Number(oldest.seq);
    if (oldestSeq === undefined || oldestSeq > after + 1) {
      const reset: NotificationEvent = { type: 'reset', workspaceId, at: now(), headId: String(head) };
      return [{ id: String(head), data: reset }];
    }
    const rows = await this.db
      .selectFrom('pulse_notification_events')
      .select(['seq', 'payload'])
      .where('workspace_id', '=', workspaceId)
      .where('seq', '>', after)
      .where((eb) => eb.or([eb('recipient', 'is', null), eb('recipient', '=', userId)]))
      .orderBy('seq')
      .execute();
    return rows.map((row) => ({ id: String(row.seq), data: JSON.parse(row.payload) as NotificationEvent }));
  }

  private async markWith(
    userId: string,
    workspaceId: string,
    all: boolean,
    candidates: (trx: Trx) => Promise<Array<{ id: string }>>,
  ): Promise<NotificationReadResult> {
    let result: NotificationReadResult;
    try {
      result = await this.db.transaction().execute(async (trx) => {
        const found = await candidates(trx);
        if (found.length === 0) {
          return { ids: [], unreadCount: await this.countUnread(trx, userId, workspaceId) };
        }
        const readAt = now();
        const ids: string[] = [];
        // NOTE: chunks keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
        for (let start = 0; start < found.length; start += 500) {
          const marked = await trx
            .insertInto('pulse_notification_reads')
            .values(
              found.slice(start, start + 500).map((row) => ({
                notification_id: row.id,
                user_id: userId,
                workspace_id: workspaceId,
                read_at: readAt,
              })),
            )
            .onConflict((oc) => oc.columns(['notification_id', 'user_id']).doNothing())
            .returning('notification_id')
            .execute();
          for (const row of marked) ids.push(row.notification_id);
        }
        const unreadCount = await this.countUnread(trx, userId, workspaceId);
        if (ids.length > 0) {
          const seq = await nextSeq(trx, notificationsTopic(workspaceId));
          const event: NotificationEvent = {
            type: 'read',
            workspaceId,
            at: readAt,
            userId,
            ids,
            all,
            unreadCount,
          };
          await this.appendEvent(trx, workspaceId, seq, userId, event);
        }
        return { ids, unreadCount };
      });
    } catch (error) {
      throw storeError(error, 'Could not store the read state');
    }
    if (result.ids.length > 0) await this.relay(workspaceId);
    return result;
  }

  private visibleUnread(db: Db | Trx, userId: string, workspaceId: string) {
    return db
      .selectFrom('pulse_notifications as n')
      .select('n.id')
      .where('n.workspace_id', '=', workspaceId)
      .where((eb) =>
        eb.and([
          eb.or([eb('n.user_id', 'is', null), eb('n.user_id', '=', userId)]),
          eb.not(
            eb.exists(
              eb
                .selectFrom('pulse_notification_reads as r')
                .select('r.notification_id')
                .whereRef('r.notification_id', '=', 'n.id')
                .where('r.user_id', '=', userId),
            ),
          ),
        ]),
      );
  }

  private async countUnread(db: Db | Trx, userId: string, workspaceId: string): Promise<number> {
    const row = await this.visibleUnread(db, userId, workspaceId)
      .clearSelect()
      .select((eb) => eb.fn.countAll().as('count'))
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  private async findByKey(
    db: Db | Trx,
    workspaceId: string,
    senderKey: string,
    key: string,
  ): Promise<StoredNotification | null> {
    const row = await db
      .selectFrom('pulse_notifications')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('sender', '=', senderKey)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();
    return row ? toNotification(row) : null;
  }

  /** Writes one event of the stream and prunes what fell out of the retention window. */
  private async appendEvent(
    trx: Trx,
    workspaceId: string,
    seq: number,
    recipient: string | null,
    event: NotificationEvent,
  ): Promise<void> {
    await trx
      .insertInto('pulse_notification_events')
      .values({ workspace_id: workspaceId, seq, recipient, payload: JSON.stringify(event) })
      .execute();
    const floor = seq - this.opts.retention;
    if (floor > 0) {
      await trx
        .deleteFrom('pulse_notification_events')
        .where('workspace_id', '=', workspaceId)
        .where('seq', '<=', floor)
        .execute();
    }
  }

  /**
   * Publishes every committed, unpublished event of the workspace's stream. Calls made while a
   * relay runs share one follow-up run, which starts after the current one (and so sees their
   * commits). Never rejects: a failure is reported and retried by the next write.
   */
  private relay(workspaceId: string): Promise<void> {
    let state = this.relays.get(workspaceId);
    if (!state) {
      state = { running: null, queued: null };
      this.relays.set(workspaceId, state);
    }
    const current = state;
    if (current.queued) return current.queued;
    const start = (): Promise<void> => {
      const run = this.publishPending(workspaceId)
        .catch((error: unknown) => this.opts.onError?.(error, `notifications relay ${workspaceId}`))
        .finally(() => {
          current.running = null;
          if (!current.queued && this.relays.get(workspaceId) === current) this.relays.delete(workspaceId);
        });
      current.running = run;
      return run;
    };
    if (!current.running) return start();
    current.queued = current.running.then(() => {
      current.queued = null;
      return start();
    });
    return current.queued;
  }

  private async publishPending(workspaceId: string): Promise<void> {
    const topic = notificationsTopic(workspaceId);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('pulse_notification_relay')
        .values({ workspace_id: workspaceId, published_seq: 0 })
        .onConflict((oc) => oc.column('workspace_id').doNothing())
        .execute();
      let cursorQuery = trx
        .selectFrom('pulse_notification_relay')
        .select('published_seq')
        .where('workspace_id', '=', workspaceId);
      // NOTE: the row lock serialises relays of one stream across nodes, so the bus sees ids in order.
      // SQLite needs none: its writers are serialised already.
      if (this.opts.store.dialect === 'postgres') cursorQuery = cursorQuery.forUpdate();
      const cursor = await cursorQuery.executeTakeFirstOrThrow();
      const events = await trx
        .selectFrom('pulse_notification_events')
        .select(['seq', 'payload'])
        .where('workspace_id', '=', workspaceId)
        .where('seq', '>', Number(cursor.published_seq))
        .orderBy('seq')
        .execute();
      const last = events.at(-1);
      if (!last) return;
      for (const row of events) await this.opts.hub.publish(topic, JSON.parse(row.payload), String(row.seq));
      await trx
        .updateTable('pulse_notification_relay')
        .set({ published_seq: Number(last.seq) })
        .where('workspace_id', '=', workspaceId)
        .execute();
    });
  }
}

function toNotification(row: NotificationRow): StoredNotification {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    userId: row.user_id,
    type: row.type,
    title: row.title,
    body: row.body,
    priority: row.priority,
    data: JSON.parse(row.data),
    createdAt: row.created_at,
    eventId: String(row.seq),
  } as StoredNotification;
}

/** Parses with zod; a failure is a BAD_REQUEST whose cause carries the issues (the error formatter lists them). */
function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: z.prettifyError(parsed.error), cause: parsed.error });
  }
  return parsed.data;
}

function storeError(error: unknown, message: string): unknown {
  if (error instanceof TRPCError) return error;
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message, cause: error });
}
