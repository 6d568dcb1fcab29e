import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';

export const presenceStatusSchema = z.enum(['online', 'away', 'offline']);
export type PresenceStatus = z.infer<typeof presenceStatusSchema>;

export const activitySchema = z.object({
  kind: z.enum(['viewing', 'editing', 'commenting']),
  target: z.string().max(200).optional(),
});
export type Activity = z.infer<typeof activitySchema>;

export const presenceSetInput = z.object({
  workspaceId: idSchema,
  status: z.enum(['online', 'away']),
  page: z.string().max(500).optional(),
  activity: activitySchema.optional(),
});
export type PresenceSetInput = z.infer<typeof presenceSetInput>;

export const presenceUserInput = z.object({ workspaceId: idSchema, userId: idSchema });

/** One user's presence in one workspace, merged across all of that user's connections. */
export const userPresenceSchema = z.object({
  userId: z.string(),
  name: z.string(),
  status: presenceStatusSchema,
  page: z.string().nullable(),
  activity: activitySchema.nullable(),
  /** ISO time the user came online (earliest live connection). */
  since: z.string(),
  /** ISO time of the latest change. */
  updatedAt: z.string(),
});
export type UserPresence = z.infer<typeof userPresenceSchema>;

const base = { workspaceId: z.string(), at: z.string() };

export const presenceEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('snapshot'), ...base, users: z.array(userPresenceSchema) }),
  z.object({ type: z.literal('join'), ...base, user: userPresenceSchema }),
  z.object({ type: z.literal('update'), ...base, user: userPresenceSchema }),
  z.object({ type: z.literal('leave'), ...base, userId: z.string() }),
]);
export type PresenceEvent = z.infer<typeof presenceEventSchema>;

export const typingSetInput = z.object({
  workspaceId: idSchema,
  conversationId: idSchema,
  isTyping: z.boolean(),
});
export type TypingSetInput = z.infer<typeof typingSetInput>;

export const typingSubscribeInput = z.object({ workspaceId: idSchema, conversationId: idSchema.optional() });

export const typingEntrySchema = z.object({
  conversationId: z.string(),
  userId: z.string(),
  name: z.string(),
});
export type TypingEntry = z.infer<typeof typingEntrySchema>;

export const typingEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('typing_snapshot'), ...base, typing: z.array(typingEntrySchema) }),
  z.object({
    type: z.literal('typing'),
    ...base,
    conversationId: z.string(),
    userId: z.string(),
    name: z.string(),
    isTyping: z.boolean(),
  }),
]);
export type TypingEvent = z.infer<typeof typingEventSchema>;
