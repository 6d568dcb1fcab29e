import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';
import {
  streamAsOfFields,
  streamEventBase,
  streamEventIdSchema,
  streamResetEventSchema,
  streamSyncEventSchema,
} from '../streams/stream.schema.js';

/** Social platforms a notification can refer to. */
export const notificationPlatformSchema = z.enum([
  'twitter',
  'x',
  'facebook',
  'instagram',
  'linkedin',
  'tiktok',
  'youtube',
  'threads',
  'pinterest',
  'reddit',
  'google',
  'other',
]);
export type NotificationPlatform = z.infer<typeof notificationPlatformSchema>;

const text = (max: number) => z.string().min(1).max(max);
const url = z.url().max(2000);

/** The payload of each notification kind, keyed by kind. */
export const notificationPayloads = {
  /** Someone mentioned the brand or a team member on a platform. */
  mention: z.object({
    platform: notificationPlatformSchema,
    author: text(200),
    text: text(5000),
    url: url.optional(),
  }),
  /** A direct message arrived in the inbox. */
  message: z.object({
    conversationId: idSchema,
    platform: notificationPlatformSchema,
    from: text(200),
    preview: z.string().max(500),
  }),
  /** Content waits for (or got) an approval decision. */
  approval: z.object({
    postId: idSchema,
    requestedBy: text(200),
    status: z.enum(['pending', 'approved', 'rejected']),
    comment: z.string().max(2000).optional(),
  }),
  /** Something needs attention (SLA breach, quota, integration failure…). */
  alert: z.object({
    alertType: z.enum(['sla', 'quota', 'integration', 'security', 'system']),
    severity: z.enum(['info', 'warning', 'critical']),
    message: text(2000),
    conversationId: idSchema.optional(),
  }),
  /** A scheduled post went live. */
  post_published: z.object({
    postId: idSchema,
    platform: notificationPlatformSchema,
    url: url.optional(),
  }),
  /** A scheduled post could not be published. */
  post_failed: z.object({
    postId: idSchema,
    platform: notificationPlatformSchema,
    error: text(2000),
    retryable: z.boolean().default(false),
  }),
  /** A spike of negative attention around a topic. */
  crisis: z.object({
    severity: z.enum(['low', 'medium', 'high', 'critical']),
    topic: text(200),
    volume: z.number().int().nonnegative(),
    sentiment: z.number().min(-1).max(1).optional(),
  }),
  /** A customer review was posted. */
  review: z.object({
    platform: notificationPlatformSchema,
    author: text(200),
    rating: z.number().int().min(1).max(5),
    text: z.string().max(5000).optional(),
    url: url.optional(),
  }),
} as const;

/** Every notification kind, in one place. */
export const notificationTypes = [
  'mention',
  'message',
  'approval',
  'alert',
  'post_published',
  'post_failed',
  'crisis',
  'review',
] as const satisfies ReadonlyArray<keyof typeof notificationPayloads>;
export const notificationTypeSchema = z.enum(notificationTypes);
export type NotificationType = z.infer<typeof notificationTypeSchema>;

export const notificationPrioritySchema = z.enum(['low', 'normal', 'high', 'urgent']);
export type NotificationPriority = z.infer<typeof notificationPrioritySchema>;

/** Fields every notification carries whatever its kind. */
export const notificationContentFields = {
  title: text(200),
  body: z.string().max(5000).optional(),
  priority: notificationPrioritySchema.default('normal'),
  /** Sending the same key again (also concurrently) returns the first notification, delivered once. */
  idempotencyKey: z.string().min(1).max(200).optional(),
  /** Recipient; absent = every member of the workspace (read state is kept per user). */
  userId: idSchema.optional(),
};

const kind = <T extends NotificationType>(type: T) =>
  z.object({ type: z.literal(type), ...notificationContentFields, data: notificationPayloads[type] });

/** What a sender supplies: one discriminated union on `type`, each kind with its own `data`. */
export const notificationContentSchema = z.discriminatedUnion('type', [
  kind('mention'),
  kind('message'),
  kind('approval'),
  kind('alert'),
  kind('post_published'),
  kind('post_failed'),
  kind('crisis'),
  kind('review'),
]);
/** Input of `notifications.send` without `workspaceId` (as parsed: defaults applied). */
export type NotificationContent = z.infer<typeof notificationContentSchema>;
/** What a caller may pass (defaults such as `priority` optional). */
export type NotificationContentInput = z.input<typeof notificationContentSchema>;
/** `data` of one kind. */
export type NotificationData<T extends NotificationType> = z.infer<(typeof notificationPayloads)[T]>;

/** `notifications.send` input. */
export const notificationSendInput = z.intersection(
  z.object({ workspaceId: idSchema }),
  notificationContentSchema,
);
export type NotificationSendInput = z.input<typeof notificationSendInput>;

/** Fields of every stored notification whatever its kind. */
export const notificationStoredFields = {
  id: z.string(),
  workspaceId: z.string(),
  /** Recipient, or null for a workspace-wide notification. */
  userId: z.string().nullable(),
  title: z.string(),
  body: z.string().nullable(),
  priority: notificationPrioritySchema,
  /** ISO time it was accepted. */
  createdAt: z.string(),
  /** Stream id of the event that delivered it (orders notifications; the list cursor). */
  eventId: z.string(),
};

const storedKind = <T extends NotificationType>(type: T) =>
  z.object({ type: z.literal(type), ...notificationStoredFields, data: notificationPayloads[type] });

/** A notification as stored (no per-user state). */
export const storedNotificationSchema = z.discriminatedUnion('type', [
  storedKind('mention'),
  storedKind('message'),
  storedKind('approval'),
  storedKind('alert'),
  storedKind('post_published'),
  storedKind('post_failed'),
  storedKind('crisis'),
  storedKind('review'),
]);
export type StoredNotification = z.infer<typeof storedNotificationSchema>;

/** A notification as one recipient sees it: the stored fields and this user's state. */
export const notificationSchema = storedNotificationSchema.and(
  z.object({
    /** ISO time this user read it, or null. */
    readAt: z.string().nullable(),
    /** ISO time this user first saw it (in the feed or by reading it), or null (always set by `list`). */
    seenAt: z.string().nullable().optional(),
    /** ISO time this user archived it, or null (always set by `list`; archived ones leave the default list and the counts). */
    archivedAt: z.string().nullable().optional(),
  }),
);
export type Notification = z.infer<typeof notificationSchema>;

/** Which of a user's notifications `notifications.list` returns (default: everything not archived). */
export const notificationStatusSchema = z.enum(['all', 'unseen', 'unread', 'read', 'archived']);
export type NotificationStatus = z.infer<typeof notificationStatusSchema>;

const maxPage = 100;

export const notificationListInput = z.object({
  workspaceId: idSchema,
  /** `nextCursor` of the previous page. */
  cursor: z
    .string()
    .regex(/^[1-9]\d{0,15}$/, 'must be a cursor returned by notifications.list')
    .optional(),
  limit: z.number().int().min(1).max(maxPage).default(20),
  /** Same as `status: 'unread'` (kept for older clients). */
  unreadOnly: z.boolean().default(false),
  /** `all`, `unseen`, `unread`, `read` (not archived) or `archived`; default: everything not archived. */
  status: notificationStatusSchema.optional(),
  types: z.array(notificationTypeSchema).min(1).max(notificationTypes.length).optional(),
  /** Same as `types`. */
  kinds: z.array(notificationTypeSchema).min(1).max(notificationTypes.length).optional(),
});
export type NotificationListInput = z.input<typeof notificationListInput>;

/** `notifications.list`: one page, and the stream position it was read at. */
export const notificationPageSchema = z.object({
  items: z.array(notificationSchema),
  /** Pass as `cursor` for the next (older) page; null at the end. */
  nextCursor: z.string().nullable(),
  /** The stream id the page was read at (`streamAsOfFields`): live events past it are not in it. */
  ...streamAsOfFields,
});
export type NotificationPage = z.infer<typeof notificationPageSchema>;

export const notificationMarkReadInput = z.object({
  workspaceId: idSchema,
  ids: z.array(z.string().min(1).max(100)).min(1).max(500),
});
export type NotificationMarkReadInput = z.input<typeof notificationMarkReadInput>;

/** A user's badge numbers: unseen (the badge) and unread, over notifications not archived or muted. */
export const notificationCountsSchema = z.object({
  unseen: z.number().int().nonnegative(),
  unread: z.number().int().nonnegative(),
});
export type NotificationCounts = z.infer<typeof notificationCountsSchema>;

/** `notifications.counts`: the counts and the stream position they were read at. */
export const notificationCountsAnswerSchema = notificationCountsSchema.extend(streamAsOfFields);
export type NotificationCountsAnswer = z.infer<typeof notificationCountsAnswerSchema>;

/** What `markSeen` / `archive` / `unarchive` return. */
export const notificationStateResultSchema = z.object({
  /** Ids whose state this call changed (unknown, not yours, or already in that state: left out). */
  ids: z.array(z.string()),
  /** The caller's counts after this call. */
  counts: notificationCountsSchema,
  /** The stream position of `counts`: this call's event id, or the head when it changed nothing. */
  ...streamAsOfFields,
});
export type NotificationStateResult = z.infer<typeof notificationStateResultSchema>;

/** What `markRead` / `markAllRead` return: the state result and `unreadCount` (older clients). */
export const notificationReadResultSchema = notificationStateResultSchema.extend({
  unreadCount: z.number().int().nonnegative(),
});
export type NotificationReadResult = z.infer<typeof notificationReadResultSchema>;

/** What a bulk state change does to the caller's notifications. */
export const notificationStateActionSchema = z.enum(['seen', 'read', 'archived', 'unarchived']);
export type NotificationStateAction = z.infer<typeof notificationStateActionSchema>;

/**
 * Input of `markSeen` / `markRead` / `archive` / `unarchive`: either `ids` (1–500), or `all: true`
 * for everything the caller can see in the workspace, optionally only `types` (kinds) and only up
 * to `upTo` (an `eventId` from the list or stream: nothing newer is touched).
 */
export const notificationBulkInput = notificationBulkInputFor(
  notificationTypeSchema,
  notificationTypes.length,
);

/** `notificationBulkInput` whose `types` / `kinds` name the given kinds (an app's registry's). */
export function notificationBulkInputFor<K extends z.ZodType<string>>(type: K, count: number) {
  return z
    .object({
      workspaceId: idSchema,
      ids: z.array(z.string().min(1).max(100)).min(1).max(500).optional(),
      all: z.literal(true).optional(),
      types: z.array(type).min(1).max(count).optional(),
      kinds: z.array(type).min(1).max(count).optional(),
      upTo: streamEventIdSchema.optional(),
    })
    .refine((input) => (input.ids === undefined) !== (input.all === undefined), {
      message: 'pass either ids or all: true',
      path: ['ids'],
    })
    .refine((input) => input.ids === undefined || (!input.types && !input.kinds && !input.upTo), {
      message: 'types, kinds and upTo go with all: true, not with ids',
      path: ['ids'],
    });
}
export type NotificationBulkInput = z.input<typeof notificationBulkInput>;

/**
 * The preference schemas whose per-kind `kinds` (and `effective`) name the given kinds: the seed's
 * below, an app registry's with `notificationKinds` (its types carry the app's kind union).
 */
export function notificationPreferencesSchemasFor<K extends z.ZodType<string>>(type: K) {
  // NOTE: `{}` fits every partial record, but TypeScript cannot see it while `K` is generic.
  const none = {} as never;
  /** A user's own notification preferences in one workspace. */
  const user = z.object({
    /** In-app delivery per kind; absent = the workspace default (on unless an admin turned it off). */
    kinds: z.partialRecord(type, z.boolean()).default(none),
    /** Conversations whose `message` notifications are muted. */
    mutedConversations: z.array(idSchema).max(1000).default([]),
  });
  /** A workspace's defaults, set by its admins. */
  const workspace = z.object({
    kinds: z.partialRecord(type, z.boolean()).default(none),
    /** Whether members may mute `crisis` alerts (default false: they always arrive). */
    crisisMutable: z.boolean().default(false),
  });
  /** `notifications.preferences.get` (and `set`'s result). */
  const preferences = z.object({
    workspaceId: idSchema,
    user,
    workspace,
    /** What reaches this user now, per kind (user choice, else workspace default, else on). */
    effective: z.record(type, z.boolean()),
  });
  return { user, workspace, preferences };
}

const seedPreferencesSchemas = notificationPreferencesSchemasFor(notificationTypeSchema);

/** A user's own notification preferences in one workspace. */
export const userPreferencesSchema = seedPreferencesSchemas.user;
export type UserPreferences = z.infer<typeof userPreferencesSchema>;

/** A workspace's defaults, set by its admins. */
export const workspacePreferencesSchema = seedPreferencesSchemas.workspace;
export type WorkspacePreferences = z.infer<typeof workspacePreferencesSchema>;

/** `notifications.preferences.get`: the user's choices, the workspace defaults and `effective` per kind. */
export const notificationPreferencesSchema = seedPreferencesSchemas.preferences;
export type NotificationPreferences = z.infer<typeof notificationPreferencesSchema>;

/**
 * `notifications.preferences.set`: `scope: 'user'` (default) changes the caller's own choices,
 * `scope: 'workspace'` the workspace defaults (admins only). `kinds[k] = null` drops the user's choice
 * (back to the default); `conversations[id] = true` mutes a conversation's messages, `false` unmutes.
 */
export const notificationPreferencesSetInput = notificationPreferencesSetInputFor(notificationTypeSchema);

/** `notificationPreferencesSetInput` whose `kinds` name the given kinds (an app's registry's). */
export function notificationPreferencesSetInputFor<K extends z.ZodType<string>>(type: K) {
  return z.object({
    workspaceId: idSchema,
    scope: z.enum(['user', 'workspace']).default('user'),
    kinds: z.partialRecord(type, z.boolean().nullable()).optional(),
    conversations: z
      .record(idSchema, z.boolean())
      .refine((v) => Object.keys(v).length <= 100, { message: 'at most 100 conversations per call' })
      .optional(),
    /** Workspace scope only. */
    crisisMutable: z.boolean().optional(),
  });
}

export type NotificationPreferencesSetInput = z.input<typeof notificationPreferencesSetInput>;

/** A durable stream id: the decimal sequence number of an event in its stream (the kernel's). */
export const notificationEventIdSchema = streamEventIdSchema;

export const notificationSubscribeInput = z.object({
  workspaceId: idSchema,
  /** Resume after this event id (the tRPC client sends it by itself on reconnect). */
  lastEventId: notificationEventIdSchema.nullish(),
});
export type NotificationSubscribeInput = z.input<typeof notificationSubscribeInput>;

const eventBase = streamEventBase;

/** A new notification for this user (or for the whole workspace). */
const notificationEvent = z.object({
  type: z.literal('notification'),
  ...eventBase,
  /** Recipient, or null for everyone in the workspace. */
  userId: z.string().nullable(),
  notification: notificationSchema,
});
/** This user marked notifications read (any tab): `ids` are now read, `unreadCount` is the new total. */
const readEvent = z.object({
  type: z.literal('read'),
  ...eventBase,
  userId: z.string(),
  ids: z.array(z.string()),
  /** True for markAllRead (or `all: true`): everything in scope is read. */
  all: z.boolean(),
  unreadCount: z.number().int().nonnegative(),
  /** The new counts (read implies seen, so `unseen` may drop too). */
  counts: notificationCountsSchema.optional(),
});
/**
 * This user changed the state of notifications (any tab): `ids` are now seen / archived /
 * unarchived (`read` changes come as `read` events), `counts` are the new totals.
 */
const stateEvent = z.object({
  type: z.literal('state'),
  ...eventBase,
  userId: z.string(),
  action: z.enum(['seen', 'archived', 'unarchived']),
  ids: z.array(z.string()),
  /** The call named no ids but a scope (`all`, maybe `types` and `upTo`). */
  all: z.boolean(),
  counts: notificationCountsSchema,
});
/**
 * Preferences changed: the user's own (`userId` = them) or the workspace defaults (`userId: null`,
 * to everyone). `revision` increases per scope; the stream uses it to apply the newest one.
 */
const preferencesEvent = z.object({
  type: z.literal('preferences'),
  ...eventBase,
  userId: z.string().nullable(),
  scope: z.enum(['user', 'workspace']),
  revision: z.number().int().positive(),
  user: userPreferencesSchema.optional(),
  workspace: workspacePreferencesSchema.optional(),
});

/**
 * What `notifications.onNotification` yields (each wrapped in `tracked(id, event)`): new
 * notifications and reads, as before issue 17 (older clients switch exhaustively over these).
 */
export const notificationEventSchema = z.discriminatedUnion('type', [
  notificationEvent,
  readEvent,
  /** The stream's head, first to a subscription without `lastEventId` (the kernel's `sync`). */
  streamSyncEventSchema,
  /** The resume point is older than the retention window: refetch (list, unreadCount), then carry on. */
  streamResetEventSchema,
]);
export type NotificationEvent = z.infer<typeof notificationEventSchema>;

/**
 * What `notifications.onFeed` yields: the same stream with every change of the feed, i.e. also
 * `state` (seen / archived / unarchived) and `preferences` events.
 */
export const notificationFeedEventSchema = z.discriminatedUnion('type', [
  notificationEvent,
  readEvent,
  stateEvent,
  preferencesEvent,
  streamSyncEventSchema,
  streamResetEventSchema,
]);
export type NotificationFeedEvent = z.infer<typeof notificationFeedEventSchema>;
export type NotificationEventType = NotificationFeedEvent['type'];
