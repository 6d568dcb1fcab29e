import { randomUUID } from 'node:crypto';
import { TRPCError, type TrackedEnvelope } from '@trpc/server';
import { type Kysely, sql, type Transaction } from 'kysely';
import { z } from 'zod';
import type { Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import { type LiveItem, LiveStream } from '../infra/live.js';
import { GatherBatch } from '../infra/read-batch.js';
import { readSnapshot, type Store } from '../infra/store/db.js';
import { HotQuery } from '../infra/store/hot-query.js';
import type { DurableStream } from '../streams/durable-stream.js';
import { StreamKernel } from '../streams/stream-kernel.js';
import { assertAccess } from '../auth/access.js';
import {
  effectiveKinds,
  type Layer,
  loadUserPreferences,
  loadUsersPreferences,
  loadWorkspacePreferences,
  MuteFilter,
  mutedByDefault,
  type PreferenceSource,
  mutedFor,
  WORKSPACE_DEFAULTS,
} from './notifications.preferences.js';
import {
  type NotificationBulkInput,
  type NotificationContent,
  type NotificationCounts,
  type NotificationCountsAnswer,
  type NotificationPreferences,
  type NotificationPreferencesSetInput,
  type NotificationStateAction,
  type NotificationStateResult,
  type NotificationType,
  notificationBulkInput,
  notificationPreferencesSetInput,
  type UserPreferences,
  type WorkspacePreferences,
  notificationEventIdSchema,
  type Notification,
  type NotificationContentInput,
  notificationContentSchema,
  type NotificationEvent,
  type NotificationFeedEvent,
  type NotificationListInput,
  notificationListInput,
  type NotificationPage,
  type NotificationReadResult,
  type StoredNotification,
} from './notifications.schema.js';
import type { NotificationTables } from './notifications.tables.js';
import { NotificationWebhook, type NotificationWebhookOptions } from './notifications.webhook.js';

export interface NotificationServiceOptions {
  store: Store;
  hub: Hub;
  /** Events kept per workspace stream for replay; an older resume point gets a `reset`. */
  retention: number;
  /** Reports failures that cannot reach a caller (e.g. the bus was down after a commit). */
  onError?: (error: unknown, context: string) => void;
  /** The node's durable-stream kernel (default: one of its own, closed by `close()`). */
  streams?: StreamKernel;
  /**
   * How long a new notification may stay unseen before the outgoing webhook gets it (ms), or
   * null/undefined when it never escalates (see `notifications.webhook.ts`, `escalationRule`).
   */
  escalationDelay?: (notification: StoredNotification) => number | null | undefined;
  /** The outgoing webhook for notifications left unseen (off when absent). */
  webhook?: NotificationWebhookOptions;
  /** This node's id (the webhook's claims name it). */
  nodeId?: string;
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
): DurableStream<NotificationFeedEvent> {
  return kernel.define<NotificationFeedEvent>({
    name: 'notifications',
    retention,
    // NOTE: read, state and a user's preference events are addressed to their user; notifications to
    // their recipient or everyone; workspace preference defaults to everyone.
    recipientOf: (event) =>
      event.type === 'notification' ||
      event.type === 'read' ||
      event.type === 'state' ||
      event.type === 'preferences'
        ? event.userId
        : null,
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

/** What `send` checks of its input beside the content (the routers check it with `idSchema`). */
const sendWorkspaceInput = z.object({ workspaceId: z.string().min(1) });

/** Every send's row (a hot statement: built and compiled once; a repeated idempotency key inserts nothing). */
const insertNotification = new HotQuery(
  (
    db,
    id: string,
    workspaceId: string,
    seq: number,
    userId: string | null,
    type: string,
    title: string,
    body: string | null,
    data: string,
    priority: string,
    sender: string,
    idempotencyKey: string | null,
    createdAt: string,
    mutedDefault: number,
  ) =>
    (db as Db)
      .insertInto('pulse_notifications')
      .values({
        id,
        workspace_id: workspaceId,
        seq,
        user_id: userId,
        type: type as NotificationType,
        title,
        body,
        data,
        priority: priority as NotificationRow['priority'],
        sender,
        idempotency_key: idempotencyKey,
        created_at: createdAt,
        muted_default: mutedDefault,
      })
      .onConflict((oc) => oc.columns(['workspace_id', 'sender', 'idempotency_key']).doNothing())
      .returning('id'),
);

/** Thrown inside a send transaction when its idempotency key was taken meanwhile: roll back, return the winner. */
class DuplicateKey extends Error {}

/** Thrown inside a write to roll it back and return `value` instead. */
class Rollback extends Error {
  constructor(readonly value: unknown) {
    super('rollback');
  }
}

/**
 * Durable notifications: one gap-free, strictly increasing event stream per workspace
 * (`notifications:<workspaceId>`), persisted before it is published, resumable with `lastEventId`.
 * Ids, storage, replay and publication (in id order, by any node, also after a crash) are the
 * durable-stream kernel's (`src/streams/`).
 */
export class NotificationService {
  private readonly db: Db;
  private readonly store: Store;
  private readonly kernel: StreamKernel;
  private readonly ownsKernel: boolean;
  private readonly stream: DurableStream<NotificationFeedEvent>;
  private readonly hub: Hub;
  /**
   * The mute filters' preference reads of subscriptions of one workspace starting together: one read
   * (the stream's replays share theirs in `DurableStream.replay`; see `GatherBatch` for exactness).
   */
  private readonly preferenceReads = new GatherBatch<
    string,
    { workspace: Layer<WorkspacePreferences>; user: Layer<UserPreferences> }
  >();
  /** The mute filters' reads, through `preferenceReads`. */
  private readonly preferenceSource: PreferenceSource = {
    layers: (workspaceId, userId) =>
      this.preferenceReads.get(workspaceId, userId, async (userIds) => {
        const { workspace, users } = await loadUsersPreferences(this.db, workspaceId, userIds);
        return userIds.map((id) => ({ workspace, user: users.get(id) as Layer<UserPreferences> }));
      }),
  };
  /** The stored mute decisions of replayed notifications, per workspace, for the resumes of a batch. */
  private readonly mutedReads = new GatherBatch<{ userId: string; ids: string[] }, Set<string>>();
  private readonly escalationDelay: NotificationServiceOptions['escalationDelay'];
  /** The outgoing webhook of unseen notifications, when configured (`runDue` for tests). */
  readonly webhook: NotificationWebhook | null;

  constructor(opts: NotificationServiceOptions) {
    this.hub = opts.hub;
    this.webhook = opts.webhook
      ? new NotificationWebhook({
          store: opts.store,
          nodeId: opts.nodeId ?? 'pulse',
          webhook: opts.webhook,
          onError: opts.onError,
        })
      : null;
    this.escalationDelay = opts.escalationDelay ?? this.webhook?.delayOf;
    this.store = opts.store;
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
    /** The app's kinds (`notificationKinds(...).content`); default: the eight seed kinds. */
    contentSchema: z.ZodType<NotificationContent> = notificationContentSchema,
  ): Promise<SendResult> {
    const workspaceId = parseOrThrow(sendWorkspaceInput, input).workspaceId;
    // NOTE: access first (before the content is parsed), as `sendValidated` checks it again.
    if (sender !== 'system') assertAccess(sender, workspaceId, 'admin');
    return this.sendValidated(sender, workspaceId, parseOrThrow(contentSchema, input));
  }

  /**
   * `send` for a caller that validated the input already: `content` is the output of the content
   * schema (the routers' `notifications.send`, whose input parser is that schema and whose
   * procedure checked the sender's access), so it is not parsed a second time.
   */
  async sendValidated(
    sender: NotificationSender,
    workspaceId: string,
    content: NotificationContent,
  ): Promise<SendResult> {
    if (sender !== 'system') assertAccess(sender, workspaceId, 'admin');

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
        // NOTE: preferences are read after the stream id (on PostgreSQL: under the stream's row
        // lock, which every preference change also takes), so a change applies exactly to the sends
        // that follow it.
        const recipient = content.userId ?? null;
        const prefs = recipient
          ? await loadUserPreferences(trx, workspaceId, recipient).then(({ workspace, user }) => ({
              workspace,
              users: new Map([[recipient, user]]),
            }))
          : await loadWorkspacePreferences(trx, workspaceId);
        const mutedDefault = mutedByDefault(prefs.workspace.settings, content.type);
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
        const inserted = await insertNotification.execute(
          trx,
          id,
          workspaceId,
          seq,
          notification.userId,
          notification.type,
          notification.title,
          notification.body,
          JSON.stringify(notification.data),
          notification.priority,
          senderKey,
          content.idempotencyKey ?? null,
          createdAt,
          mutedDefault ? 1 : 0,
        );
        if (inserted.rows.length === 0) throw new DuplicateKey();
        // Users whose own choice differs from the workspace default get it in their state row.
        const overrides: Array<{ userId: string; muted: boolean }> = [];
        for (const [userId, layer] of prefs.users) {
          const muted = mutedFor(layer.settings, prefs.workspace.settings, notification);
          if (muted !== mutedDefault) overrides.push({ userId, muted });
        }
        for (let start = 0; start < overrides.length; start += 500) {
          await trx
            .insertInto('pulse_notification_states')
            .values(
              overrides.slice(start, start + 500).map((o) => ({
                notification_id: id,
                user_id: o.userId,
                workspace_id: workspaceId,
                seen_at: null,
                read_at: null,
                archived_at: null,
                muted: o.muted ? 1 : 0,
              })),
            )
            .execute();
        }
        const delayMs = this.escalationDelay?.(notification);
        const mutedForRecipient = recipient
          ? (overrides[0]?.muted ?? mutedDefault)
          : mutedDefault && overrides.every((o) => o.muted);
        if (delayMs !== undefined && delayMs !== null && !mutedForRecipient) {
          await trx
            .insertInto('pulse_notification_webhooks')
            .values({
              notification_id: id,
              recipient: recipient ?? '*',
              workspace_id: workspaceId,
              due_at: Date.parse(createdAt) + delayMs,
              attempts: 0,
              claimed_by: null,
              claimed_until: null,
              delivered_at: null,
              cancelled_at: null,
              last_error: null,
            })
            .execute();
        }
        const event: NotificationFeedEvent = {
          type: 'notification',
          workspaceId,
          at: createdAt,
          userId: notification.userId,
          notification: { ...notification, readAt: null, seenAt: null, archivedAt: null },
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

  /**
   * The user's notifications (theirs and workspace-wide, minus muted ones), newest first, with
   * their state. `status` picks `all`, `unseen`, `unread`, `read` or `archived`; by default
   * everything not archived.
   */
  async list(
    userId: string,
    rawInput: NotificationListInput,
    /** The app's list input (its `types` name the app's kinds); default: the seed kinds. */
    listSchema: z.ZodType<z.output<typeof notificationListInput>> = notificationListInput,
  ): Promise<NotificationPage> {
    const input = parseOrThrow(listSchema, rawInput);
    // NOTE: the page and the stream position in one snapshot (`asOf`): a client re-applies the live
    // events past it that landed while the answer was on its way, and only those.
    return readSnapshot(this.store, this.db, async (trx) => {
      const asOf = await this.stream.head(input.workspaceId, trx);
      return { ...(await this.page(trx, userId, input)), asOf };
    });
  }

  /** One page of `list` (without `asOf`), read on `db`. */
  private async page(
    db: Db | Trx,
    userId: string,
    input: z.output<typeof notificationListInput>,
  ): Promise<Omit<NotificationPage, 'asOf'>> {
    const status = input.status ?? (input.unreadOnly ? 'unread' : undefined);
    const types = input.types ?? input.kinds;
    let query = this.visible(db, userId, input.workspaceId)
      .selectAll('n')
      .select(['s.read_at', 's.seen_at', 's.archived_at']);
    if (input.cursor) query = query.where('n.seq', '<', Number(input.cursor));
    if (status === undefined || status === 'unseen' || status === 'unread' || status === 'read') {
      query = query.where('s.archived_at', 'is', null);
    }
    if (status === 'unseen') query = query.where('s.seen_at', 'is', null);
    if (status === 'unread') query = query.where('s.read_at', 'is', null);
    if (status === 'read') query = query.where('s.read_at', 'is not', null);
    if (status === 'archived') query = query.where('s.archived_at', 'is not', null);
    if (types) query = query.where('n.type', 'in', types);
    const rows = await query
      .orderBy('n.seq', 'desc')
      .limit(input.limit + 1)
      .execute();
    const page = rows.slice(0, input.limit);
    const last = page.at(-1);
    return {
      items: page.map(
        (row) =>
          ({
            ...toNotification(row),
            readAt: row.read_at ?? null,
            seenAt: row.seen_at ?? null,
            archivedAt: row.archived_at ?? null,
          }) as Notification,
      ),
      nextCursor: rows.length > input.limit && last ? String(last.seq) : null,
    };
  }

  /** How many of the user's notifications (theirs and workspace-wide) are unread. */
  async unreadCount(userId: string, workspaceId: string): Promise<number> {
    return (await this.countsOf(this.db, userId, workspaceId)).unread;
  }

  /**
   * The user's badge numbers: `unseen` and `unread`, over notifications neither archived nor muted,
   * and `asOf`, the stream position they were counted at (one statement: one snapshot).
   */
  async counts(userId: string, workspaceId: string): Promise<NotificationCountsAnswer> {
    const row = await this.countsQuery(this.db, userId, workspaceId)
      .select(this.stream.headExpression(workspaceId).as('as_of'))
      .executeTakeFirst();
    return {
      unseen: Number(row?.unseen ?? 0),
      unread: Number(row?.unread ?? 0),
      asOf: String(Number(row?.as_of ?? 0)),
    };
  }

  /**
   * Marks the given notifications read for this user. Ids that are unknown, already read, or
   * addressed to someone else are ignored (never an error, so nothing leaks about them).
   */
  async markRead(
    userId: string,
    input: { workspaceId: string; ids: string[] },
  ): Promise<NotificationReadResult> {
    const result = await this.changeState(userId, 'read', { workspaceId: input.workspaceId, ids: input.ids });
    return { ...result, unreadCount: result.counts.unread };
  }

  /** Marks every notification the user can see in the workspace read. */
  async markAllRead(userId: string, workspaceId: string): Promise<NotificationReadResult> {
    const result = await this.changeState(userId, 'read', { workspaceId, all: true });
    return { ...result, unreadCount: result.counts.unread };
  }

  /**
   * Changes one state of the user's notifications: by `ids`, or everything they can see in the
   * workspace (`all: true`), optionally only some kinds (`types`) and up to an event id (`upTo`).
   * Reading also marks seen. One transaction that first takes the stream's next id (on PostgreSQL
   * that locks the workspace's stream row), so concurrent calls run one at a time and every result
   * and event carries exact counts. A call that changes nothing emits nothing.
   */
  async changeState(
    userId: string,
    action: NotificationStateAction,
    rawInput:
      | NotificationBulkInput
      | (Omit<NotificationBulkInput, 'types' | 'kinds'> & { types?: string[]; kinds?: string[] }),
    /** The app's kinds (`notificationKinds(...).bulkInput`); default: the eight seed kinds. */
    schema: z.ZodType<z.output<typeof notificationBulkInput>> = notificationBulkInput,
  ): Promise<NotificationStateResult> {
    const input = parseOrThrow(schema, rawInput);
    const { workspaceId } = input;
    const types = input.types ?? input.kinds;
    try {
      return await this.write(async (trx) => {
        const seq = await this.stream.nextId(trx, workspaceId);
        let query = this.visible(trx, userId, workspaceId).select('n.id');
        if (input.ids) query = query.where('n.id', 'in', [...new Set(input.ids)]);
        if (types) query = query.where('n.type', 'in', types);
        if (input.upTo) query = query.where('n.seq', '<=', Number(input.upTo));
        if (action === 'seen') query = query.where('s.seen_at', 'is', null);
        if (action === 'read') query = query.where('s.read_at', 'is', null);
        if (action === 'archived') query = query.where('s.archived_at', 'is', null);
        if (action === 'unarchived') query = query.where('s.archived_at', 'is not', null);
        const found = await query.orderBy('n.seq').execute();
        if (found.length === 0) {
          // NOTE: roll back: the id taken above must not become a gap in the stream.
          // The stream's row lock is held (PostgreSQL) and ids are gap-free: the head is `seq - 1`.
          throw new Rollback({
            ids: [],
            counts: await this.countsOf(trx, userId, workspaceId),
            asOf: String(seq - 1),
          });
        }
        const at = now();
        const ids = found.map((row) => row.id);
        // NOTE: chunks keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
        for (let start = 0; start < ids.length; start += 500) {
          const chunk = ids.slice(start, start + 500);
          if (action === 'unarchived') {
            await trx
              .updateTable('pulse_notification_states')
              .set({ archived_at: null })
              .where('user_id', '=', userId)
              .where('notification_id', 'in', chunk)
              .execute();
            continue;
          }
          await trx
            .insertInto('pulse_notification_states')
            .values(
              chunk.map((id) => ({
                notification_id: id,
                user_id: userId,
                workspace_id: workspaceId,
                seen_at: at,
                read_at: action === 'read' ? at : null,
                archived_at: action === 'archived' ? at : null,
                muted: null,
              })),
            )
            .onConflict((oc) =>
              oc.columns(['notification_id', 'user_id']).doUpdateSet({
                seen_at:
                  action === 'archived'
                    ? sql`pulse_notification_states.seen_at`
                    : sql`coalesce(pulse_notification_states.seen_at, excluded.seen_at)`,
                read_at: sql`coalesce(pulse_notification_states.read_at, excluded.read_at)`,
                archived_at: sql`coalesce(pulse_notification_states.archived_at, excluded.archived_at)`,
              }),
            )
            .execute();
        }
        const counts = await this.countsOf(trx, userId, workspaceId);
        const all = input.all === true;
        const event: NotificationFeedEvent =
          action === 'read'
            ? { type: 'read', workspaceId, at, userId, ids, all, unreadCount: counts.unread, counts }
            : { type: 'state', workspaceId, at, userId, action, ids, all, counts };
        await this.stream.append(trx, workspaceId, event, { seq });
        return { ids, counts, asOf: String(seq) };
      });
    } catch (error) {
      throw storeError(error, 'Could not store the notification state');
    }
  }

  /** The caller's preferences, the workspace defaults and what reaches them per kind. */
  async preferences(
    userId: string,
    workspaceId: string,
    /** The router's kinds (`notificationKinds(...).types`); default: the eight seed kinds. */
    types?: readonly string[],
  ): Promise<NotificationPreferences> {
    const { user, workspace } = await loadUserPreferences(this.db, workspaceId, userId);
    return {
      workspaceId,
      user: user.settings,
      workspace: workspace.settings,
      effective: effectiveKinds(user.settings, workspace.settings, types),
    };
  }

  /**
   * Changes the caller's preferences (`scope: 'user'`) or, for admins, the workspace defaults
   * (`scope: 'workspace'`). Applies to notifications sent afterwards; pushed live as a
   * `preferences` event (to the user, or to everyone for the defaults). Muting `crisis` while the
   * workspace does not allow it is `FORBIDDEN`.
   */
  async setPreferences(
    principal: Principal,
    rawInput: NotificationPreferencesSetInput,
    /** The app's kinds (`notificationKinds(...)`): the kinds `kinds` may name; default: the seed kinds. */
    registry?: {
      types: readonly string[];
      preferencesInput: z.ZodType<z.output<typeof notificationPreferencesSetInput>>;
    },
  ): Promise<NotificationPreferences> {
    const input = parseOrThrow(registry?.preferencesInput ?? notificationPreferencesSetInput, rawInput);
    const { workspaceId } = input;
    const workspaceScope = input.scope === 'workspace';
    if (workspaceScope) {
      assertAccess(principal, workspaceId, 'admin');
      if (input.conversations) {
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: 'conversations are muted per user (scope: user)',
        });
      }
    } else if (input.crisisMutable !== undefined) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: 'crisisMutable is a workspace setting (scope: workspace)',
      });
    }
    const userId = principal.userId;
    try {
      await this.kernel.transaction(this.db, async (trx) => {
        const seq = await this.stream.nextId(trx, workspaceId);
        const loaded = await loadUserPreferences(trx, workspaceId, userId);
        const at = now();
        const kinds = (current: Partial<Record<NotificationType, boolean>>) => {
          const next = { ...current };
          for (const [type, on] of Object.entries(input.kinds ?? {})) {
            if (on === null) delete next[type as NotificationType];
            else if (on !== undefined) next[type as NotificationType] = on;
          }
          return next;
        };
        let settings: UserPreferences | WorkspacePreferences;
        let revision: number;
        if (workspaceScope) {
          const current = loaded.workspace.settings;
          settings = {
            kinds: kinds(current.kinds),
            crisisMutable: input.crisisMutable ?? current.crisisMutable,
          } satisfies WorkspacePreferences;
          revision = loaded.workspace.revision + 1;
        } else {
          const current = loaded.user.settings;
          const muted = new Set(current.mutedConversations);
          for (const [conversationId, mute] of Object.entries(input.conversations ?? {})) {
            if (mute) muted.add(conversationId);
            else muted.delete(conversationId);
          }
          const next: UserPreferences = { kinds: kinds(current.kinds), mutedConversations: [...muted] };
          if (next.kinds.crisis === false && !loaded.workspace.settings.crisisMutable) {
            throw new TRPCError({
              code: 'FORBIDDEN',
              message: `Crisis alerts cannot be muted in workspace "${workspaceId}"`,
            });
          }
          settings = next;
          revision = loaded.user.revision + 1;
        }
        const owner = workspaceScope ? WORKSPACE_DEFAULTS : userId;
        const json = JSON.stringify(settings);
        await trx
          .insertInto('pulse_notification_preferences')
          .values({ workspace_id: workspaceId, user_id: owner, settings: json, revision, updated_at: at })
          .onConflict((oc) =>
            oc.columns(['workspace_id', 'user_id']).doUpdateSet({ settings: json, revision, updated_at: at }),
          )
          .execute();
        const event: NotificationFeedEvent = workspaceScope
          ? {
              type: 'preferences',
              workspaceId,
              at,
              userId: null,
              scope: 'workspace',
              revision,
              workspace: settings as WorkspacePreferences,
            }
          : {
              type: 'preferences',
              workspaceId,
              at,
              userId,
              scope: 'user',
              revision,
              user: settings as UserPreferences,
            };
        await this.stream.append(trx, workspaceId, event, { seq });
      });
    } catch (error) {
      throw storeError(error, 'Could not store the preferences');
    }
    return this.preferences(userId, workspaceId, registry?.types);
  }

  /**
   * The user's live stream: with `lastEventId`, every missed event addressed to them (or to the
   * whole workspace) in order, then live events; a `reset` first when the resume point is older
   * than the retention window. Notifications of kinds the user muted are left out.
   */
  subscribe(opts: {
    userId: string;
    workspaceId: string;
    lastEventId?: string | null;
    signal?: AbortSignal;
  }): LiveStream<TrackedEnvelope<NotificationEvent>> {
    return this.open(opts, false) as LiveStream<TrackedEnvelope<NotificationEvent>>;
  }

  /**
   * The user's feed stream: what `subscribe` yields plus every `state` (seen / archived /
   * unarchived) and `preferences` event, on the same ids (resume points are interchangeable).
   */
  subscribeFeed(opts: {
    userId: string;
    workspaceId: string;
    lastEventId?: string | null;
    signal?: AbortSignal;
  }): LiveStream<TrackedEnvelope<NotificationFeedEvent>> {
    return this.open(opts, true);
  }

  private open(
    opts: { userId: string; workspaceId: string; lastEventId?: string | null; signal?: AbortSignal },
    feed: boolean,
  ): LiveStream<TrackedEnvelope<NotificationFeedEvent>> {
    const { userId, workspaceId } = opts;
    const lastEventId = opts.lastEventId ?? undefined;
    if (lastEventId !== undefined) parseOrThrow(notificationEventIdSchema, lastEventId);
    const base = this.stream.subscribe({
      workspaceId,
      lastEventId,
      filter: { recipient: userId },
      signal: opts.signal,
    });
    const mutes = new MuteFilter(this.preferenceSource, workspaceId, userId);
    const recipientFilter = base.spec.filter as ((event: NotificationFeedEvent) => boolean) | undefined;
    // NOTE: both the live tail and every replay go through one stateful filter in stream order
    // (the transports apply `filter` to live events in id order after the replay).
    return new LiveStream<TrackedEnvelope<NotificationFeedEvent>>(this.hub, {
      ...base.spec,
      filter: (event: NotificationFeedEvent) =>
        (!recipientFilter || recipientFilter(event)) && mutes.accept(event) && (feed || !feedOnly(event)),
      initial: async (afterId: string | undefined) => {
        // NOTE: replays (and `sync` heads) of the subscriptions of a workspace starting together
        // share one read of the stream (`DurableStream.replay`), exact per subscriber.
        const items = (await base.spec.initial(afterId)) as Array<LiveItem<NotificationFeedEvent>>;
        // NOTE: loaded after the head was read, so the live tail (ids past the head) starts from
        // the preferences at the head and follows each later change in stream order. Only a
        // change committed between the head read and this load is seen a few events early.
        await mutes.load();
        // Replayed notifications: the decision stored at send time, exactly what `list` shows.
        const muted = await this.mutedAmong(userId, workspaceId, items);
        return items.filter((item) => {
          if (item.data.type === 'notification') return !muted.has(item.data.notification.id);
          return feed || !feedOnly(item.data);
        });
      },
    });
  }

  /** The stream's newest event id ("0" before the first event). */
  headId(workspaceId: string): Promise<string> {
    return this.stream.head(workspaceId);
  }

  /** Stops the stream kernel when this service made its own. */
  async close(): Promise<void> {
    await this.webhook?.close();
    if (this.ownsKernel) await this.kernel.close();
  }

  private async write<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    try {
      return await this.kernel.transaction(this.db, fn);
    } catch (error) {
      if (error instanceof Rollback) return error.value as T;
      throw error;
    }
  }

  /**
   * Which notifications of these replayed events were muted for the user when they were sent. The
   * resumes of a workspace in one batch share the read (`mutedAmongMany`).
   */
  private async mutedAmong(
    userId: string,
    workspaceId: string,
    items: Array<LiveItem<NotificationFeedEvent>>,
  ): Promise<Set<string>> {
    const ids = items.flatMap((item) =>
      item.data.type === 'notification' ? [item.data.notification.id] : [],
    );
    if (ids.length === 0) return new Set();
    return this.mutedReads.get(workspaceId, { userId, ids }, (requests) => this.mutedAmongMany(requests));
  }

  /**
   * The stored decisions for several users' replayed notifications: each notification's
   * `muted_default`, and the state rows that override it (`muted` set at send time) for these users.
   */
  private async mutedAmongMany(requests: Array<{ userId: string; ids: string[] }>): Promise<Set<string>[]> {
    const ids = [...new Set(requests.flatMap((request) => request.ids))];
    const userIds = [...new Set(requests.map((request) => request.userId))];
    const mutedDefault = new Set<string>();
    /** `<notification id> <user id>` → the user's own decision. */
    const overrides = new Map<string, boolean>();
    // NOTE: chunks keep each statement under SQLite's and PostgreSQL's bound-parameter limits; a
    // few users are filtered in SQL, many read every override of these notifications (rows exist
    // only for users whose choice differed from the default when it was sent).
    const byUser = userIds.length <= 50;
    for (let start = 0; start < ids.length; start += 500) {
      const chunk = ids.slice(start, start + 500);
      const defaults = await this.db
        .selectFrom('pulse_notifications')
        .select('id')
        .where('id', 'in', chunk)
        .where('muted_default', '=', 1)
        .execute();
      for (const row of defaults) mutedDefault.add(row.id);
      let query = this.db
        .selectFrom('pulse_notification_states')
        .select(['notification_id', 'user_id', 'muted'])
        .where('notification_id', 'in', chunk)
        .where('muted', 'is not', null);
      if (byUser) query = query.where('user_id', 'in', userIds);
      for (const row of await query.execute()) {
        overrides.set(`${row.notification_id} ${row.user_id}`, row.muted === 1);
      }
    }
    return requests.map(({ userId, ids: mine }) => {
      const muted = new Set<string>();
      for (const id of mine) {
        if (overrides.get(`${id} ${userId}`) ?? mutedDefault.has(id)) muted.add(id);
      }
      return muted;
    });
  }

  /** The user's notifications in a workspace, with their state row, muted ones left out. */
  private visible(db: Db | Trx, userId: string, workspaceId: string) {
    return db
      .selectFrom('pulse_notifications as n')
      .leftJoin('pulse_notification_states as s', (join) =>
        join.onRef('s.notification_id', '=', 'n.id').on('s.user_id', '=', userId),
      )
      .where('n.workspace_id', '=', workspaceId)
      .where((eb) => eb.or([eb('n.user_id', 'is', null), eb('n.user_id', '=', userId)]))
      .where((eb) => eb(eb.fn.coalesce('s.muted', 'n.muted_default'), '=', 0));
  }

  private async countsOf(db: Db | Trx, userId: string, workspaceId: string): Promise<NotificationCounts> {
    const row = await this.countsQuery(db, userId, workspaceId).executeTakeFirst();
    return { unseen: Number(row?.unseen ?? 0), unread: Number(row?.unread ?? 0) };
  }

  private countsQuery(db: Db | Trx, userId: string, workspaceId: string) {
    return this.visible(db, userId, workspaceId)
      .where('s.archived_at', 'is', null)
      .select([
        sql<number | string>`count(case when s.seen_at is null then 1 end)`.as('unseen'),
        sql<number | string>`count(case when s.read_at is null then 1 end)`.as('unread'),
      ]);
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

/** Events only `onFeed` carries (`onNotification` keeps its pre-feed event set for older clients). */
function feedOnly(event: NotificationFeedEvent): boolean {
  return event.type === 'state' || event.type === 'preferences';
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
