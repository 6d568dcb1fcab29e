import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';
import {
  streamEventBase,
  streamEventIdSchema,
  streamResetEventSchema,
  streamSyncEventSchema,
} from '../streams/stream.schema.js';

/** Platforms a conversation can come from. */
export const inboxPlatformSchema = z.enum([
  'twitter',
  'x',
  'instagram',
  'facebook',
  'messenger',
  'whatsapp',
  'linkedin',
  'tiktok',
  'youtube',
  'threads',
  'email',
  'sms',
  'other',
]);
export type InboxPlatform = z.infer<typeof inboxPlatformSchema>;

export const conversationStatusSchema = z.enum(['open', 'pending', 'closed']);
export type ConversationStatus = z.infer<typeof conversationStatusSchema>;

/** An id chosen by a platform or a client: printable, bounded. */
const externalIdSchema = z.string().min(1).max(200);
const bodySchema = z.string().min(1).max(10_000);

export const contactSchema = z.object({
  id: externalIdSchema,
  name: z.string().min(1).max(200),
  handle: z.string().max(200).optional(),
});
export type Contact = z.infer<typeof contactSchema>;

/** A conversation as every member sees it (unread counts are per user, see `ConversationView`). */
export const conversationSchema = z.object({
  id: z.string(),
  workspaceId: z.string(),
  platform: inboxPlatformSchema,
  externalId: z.string(),
  contact: contactSchema,
  status: conversationStatusSchema,
  assigneeId: z.string().nullable(),
  createdAt: z.string(),
  lastMessageAt: z.string(),
  /** ISO time the SLA runs out while an inbound message waits for a reply; null when no clock runs. */
  slaDueAt: z.string().nullable(),
  /** ISO time the running clock was escalated; null when not escalated. */
  escalatedAt: z.string().nullable(),
});
export type Conversation = z.infer<typeof conversationSchema>;

/** A conversation with the caller's unread count. */
export type ConversationView = Conversation & { unreadCount: number };

export const messageSchema = z.object({
  id: z.string(),
  conversationId: z.string(),
  workspaceId: z.string(),
  direction: z.enum(['inbound', 'outbound']),
  /** The member who wrote an outbound message; null for inbound. */
  authorId: z.string().nullable(),
  /** Display name of the author (member name or contact name). */
  authorName: z.string(),
  body: z.string(),
  at: z.string(),
  platformMessageId: z.string().nullable(),
  clientMessageId: z.string().nullable(),
  /** Stream id of the event that delivered it (orders messages; the cursor and read watermark). */
  eventId: z.string(),
});
export type Message = z.infer<typeof messageSchema>;

/** `inbox.receive` (service): an incoming platform message. */
export const inboxReceiveInput = z.object({
  workspaceId: idSchema,
  platform: inboxPlatformSchema,
  /** The platform's thread / conversation id: one Pulse conversation per (workspace, platform, externalId). */
  externalId: externalIdSchema,
  contact: contactSchema,
  body: bodySchema,
  /** The platform's message id: receiving it again is a no-op that returns the first message. */
  platformMessageId: externalIdSchema.optional(),
  at: z.iso.datetime({ offset: true }).optional(),
});
export type InboxReceiveInput = z.input<typeof inboxReceiveInput>;

/** `inbox.send`: a member's reply, idempotent by `clientMessageId` (per author and conversation). */
export const inboxSendInput = z.object({
  conversationId: idSchema,
  body: bodySchema,
  clientMessageId: externalIdSchema,
});
export type InboxSendInput = z.input<typeof inboxSendInput>;

export interface InboxMessageResult {
  conversation: Conversation;
  message: Message;
  /** False when the message already existed (same platform or client message id). */
  created: boolean;
}

const cursorSchema = z.string().min(1).max(400);

export const inboxConversationsInput = z.object({
  workspaceId: idSchema,
  status: conversationStatusSchema.optional(),
  /** A user id, or null for unassigned conversations. */
  assigneeId: idSchema.nullable().optional(),
  cursor: cursorSchema.optional(),
  limit: z.number().int().min(1).max(100).default(20),
});
export type InboxConversationsInput = z.input<typeof inboxConversationsInput>;

export const inboxMessagesInput = z.object({
  conversationId: idSchema,
  cursor: cursorSchema.optional(),
  limit: z.number().int().min(1).max(100).default(50),
});
export type InboxMessagesInput = z.input<typeof inboxMessagesInput>;

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next (older) page; null at the end. */
  nextCursor: string | null;
  /** The inbox stream id the page was read at (`streamAsOfFields`): live events past it are not in it. */
  asOf: z.infer<typeof streamEventIdSchema>;
}

export const inboxUpdateInput = z
  .object({
    conversationId: idSchema,
    status: conversationStatusSchema.optional(),
    /** A user id to assign, null to unassign. */
    assigneeId: idSchema.nullable().optional(),
  })
  .refine((v) => v.status !== undefined || v.assigneeId !== undefined, {
    message: 'status or assigneeId is required',
  });
export type InboxUpdateInput = z.input<typeof inboxUpdateInput>;

export const inboxMarkReadInput = z.object({
  conversationId: idSchema,
  upToMessageId: idSchema,
});
export type InboxMarkReadInput = z.input<typeof inboxMarkReadInput>;

export interface InboxReadResult {
  conversationId: string;
  /** The caller's watermark after the call (a later watermark is never moved back). */
  upToMessageId: string;
  unreadCount: number;
}

export const inboxSetSlaInput = z.object({
  workspaceId: idSchema,
  /** SLA in milliseconds for this workspace; null returns to the server default. */
  slaMs: z
    .number()
    .int()
    .min(1)
    .max(30 * 24 * 3_600_000)
    .nullable(),
});
export type InboxSetSlaInput = z.input<typeof inboxSetSlaInput>;

/** A durable stream id: the decimal sequence number of an event in the workspace's inbox stream. */
export const inboxEventIdSchema = streamEventIdSchema;

export const inboxSubscribeInput = z.object({
  workspaceId: idSchema,
  /** Only events of this conversation. */
  conversationId: idSchema.optional(),
  /** Resume after this event id (the tRPC client sends it by itself on reconnect). */
  lastEventId: inboxEventIdSchema.nullish(),
});
export type InboxSubscribeInput = z.input<typeof inboxSubscribeInput>;

const base = streamEventBase;

/** What `inbox.onEvent` yields (each wrapped in `tracked(id, event)`). */
export const inboxEventSchema = z.discriminatedUnion('type', [
  /** A new message (inbound or a member's reply) with the conversation as it is after it. */
  z.object({
    type: z.literal('message'),
    ...base,
    conversationId: z.string(),
    message: messageSchema,
    conversation: conversationSchema,
  }),
  /** A conversation was created or its status / assignee changed. */
  z.object({
    type: z.literal('conversation'),
    ...base,
    conversationId: z.string(),
    change: z.enum(['created', 'updated']),
    conversation: conversationSchema,
    /** Who changed it (null for platform-created conversations). */
    byUserId: z.string().nullable(),
  }),
  /** Read receipt: `userId` has read everything up to `upToMessageId`. */
  z.object({
    type: z.literal('read'),
    ...base,
    conversationId: z.string(),
    userId: z.string(),
    upToMessageId: z.string(),
  }),
  /** An inbound message waited past the SLA. Raised once per waiting period, whatever the node count. */
  z.object({
    type: z.literal('sla_escalated'),
    ...base,
    conversationId: z.string(),
    conversation: conversationSchema,
    /** Who was alerted: the assignee, or null when the whole workspace was alerted. */
    notifiedUserId: z.string().nullable(),
    slaMs: z.number(),
  }),
  /** The stream's head, first to a subscription without `lastEventId` (the kernel's `sync`). */
  streamSyncEventSchema,
  /** The resume point is older than the retention window: refetch (conversations, messages), then carry on. */
  streamResetEventSchema,
]);
export type InboxEvent = z.infer<typeof inboxEventSchema>;
export type InboxEventType = InboxEvent['type'];
