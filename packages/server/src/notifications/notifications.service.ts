import { randomUUID } from 'node:crypto';
import { TRPCError, type TrackedEnvelope } from '@trpc/server';
import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import type { LiveStream } from '../infra/live.js';
import type { Store } from '../infra/store/db.js';
import type { DurableStream } from '../streams/durable-stream.js';
import { StreamKernel } from '../streams/stream-kernel.js';
import { assertAccess } from '../auth/access.js';
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
  /** The node's durable-stream kernel (default: one of its own, closed by `close()`). */
  streams?: StreamKernel;
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

/** The notifications stream on a kernel: events in `pulse_notification_events`, addressed by user. */
export function defineNotificationStream(
  kernel: StreamKernel,
  retention: number,
): DurableStream<NotificationEvent> {
  return kernel.define<NotificationEvent>({
    name: 'notifications',
    retention,
    // NOTE: read events are addressed to their user; notifications to their recipient or everyone.
    recipientOf: (event) => (event.type === 'notification' || event.type === 'read' ? event.userId : null),
    table: {
      table: 'pulse_notification_events',
      keyColumn: 'workspace_id',
      keyValue: 'workspace',
      recipientColumn: 'recipient',
      payloadColumn: 'payload',
    },
  });
}

type Db = Kysely<NotificationTables>;
type Trx = Transaction<NotificationTables>;
type NotificationRow = NotificationTables['pulse_notifications'];

const now = () => new Date().toISOString();

/** Thrown inside a send transaction when its idempotency key was taken meanwhile: roll back, return the winner. */
class DuplicateKey extends Error {}

/**
 * Durable notifications: one gap-free, strictly increasing event stream per workspace
 * (`notifications:<workspaceId>`), persisted before it is published, resumable with `lastEventId`.
 * Ids, storage, replay and publication (in id order, by any node, also after a crash) are the
 * durable-stream kernel's (`src/streams/`).
 */
export class NotificationService {
  private readonly db: Db;
  private readonly kernel: StreamKernel;
  private readonly ownsKernel: boolean;
  private readonly stream: DurableStream<NotificationEvent>;

  constructor(opts: NotificationServiceOptions) {
    this.db = opts.store.db.withTables<NotificationTables>();
    this.ownsKernel = !opts.streams;
    this.kernel =
      opts.streams ?? new StreamKernel({ store: opts.store, hub: opts.hub, onError: opts.onError });
    this.stream = defineNotificationStream(this.kernel, opts.retention);
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
      stored = await this.kernel.transaction(this.db, async (trx) => {
        const seq = await this.stream.nextId(trx, workspaceId);
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
        await this.stream.append(trx, workspaceId, event, { seq });
        return notification;
      });
    } catch (error) {
      if (error instanceof DuplicateKey && content.idempotencyKey) {
        const existing = await this.findByKey(this.db, workspaceId, senderKey, content.idempotencyKey);
        if (existing) return { notification: existing, created: false };
      }
      throw storeError(error, 'Could not store the notification');
    }
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
    return this.stream.subscribe({
      workspaceId,
      lastEventId,
      filter: { recipient: userId },
      signal: opts.signal,
    }) as LiveStream<TrackedEnvelope<NotificationEvent>>;
  }

  /** The stream's newest event id ("0" before the first event). */
  headId(workspaceId: string): Promise<string> {
    return this.stream.head(workspaceId);
  }

  /** Stops the stream kernel when this service made its own. */
  async close(): Promise<void> {
    if (this.ownsKernel) await this.kernel.close();
  }

  private async markWith(
    userId: string,
    workspaceId: string,
    all: boolean,
    candidates: (trx: Trx) => Promise<Array<{ id: string }>>,
  ): Promise<NotificationReadResult> {
    let result: NotificationReadResult;
    try {
      result = await this.kernel.transaction(this.db, async (trx) => {
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
          const event: NotificationEvent = {
            type: 'read',
            workspaceId,
            at: readAt,
            userId,
            ids,
            all,
            unreadCount,
          };
          await this.stream.append(trx, workspaceId, event);
        }
        return { ids, unreadCount };
      });
    } catch (error) {
      throw storeError(error, 'Could not store the read state');
    }
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
