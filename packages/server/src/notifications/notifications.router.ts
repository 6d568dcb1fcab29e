// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import type { TRPCRouterRecord } from '@trpc/server';
import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';
import { adminProcedure, memberProcedure } from '../trpc.js';
import {
  notificationBulkInput,
  notificationContentSchema,
  notificationCountsAnswerSchema,
  notificationListInput,
  notificationPreferencesSetInput,
  notificationSubscribeInput,
} from './notifications.schema.js';

const workspaceInput = z.object({ workspaceId: idSchema });

export const notificationsRouter = {
  /** Sends a notification to one user, or to every member when `userId` is omitted (admin or service). */
  send: adminProcedure
    .input(notificationContentSchema)
    .mutation(({ ctx, input }) =>
      ctx.services.notifications.sendValidated(ctx.principal, input.workspaceId, input),
    ),
  /** The caller's notifications, newest first (cursor pagination, `status`, `types` / `kinds`), with `asOf`. */
  list: memberProcedure
    .input(notificationListInput)
    .query(({ ctx, input }) => ctx.services.notifications.list(ctx.principal.userId, input)),
  /** How many of the caller's notifications are unread. */
  unreadCount: memberProcedure.query(({ ctx, input }) =>
    ctx.services.notifications.unreadCount(ctx.principal.userId, input.workspaceId),
  ),
  /** The caller's `{ unseen, unread, asOf }` (the badge is `unseen`; `asOf` the stream id they were counted at). */
  counts: memberProcedure
    .input(workspaceInput)
    .output(notificationCountsAnswerSchema)
    .query(({ ctx, input }) => ctx.services.notifications.counts(ctx.principal.userId, input.workspaceId)),
  /** Marks notifications seen: by `ids`, or `all: true` (optionally `types`, `upTo`). */
  markSeen: memberProcedure
    .input(notificationBulkInput)
    .mutation(({ ctx, input }) =>
      ctx.services.notifications.changeState(ctx.principal.userId, 'seen', input),
    ),
  /** Marks some of the caller's notifications read (also seen); ids that are not theirs are ignored. */
  markRead: memberProcedure.input(notificationBulkInput).mutation(async ({ ctx, input }) => {
    const result = await ctx.services.notifications.changeState(ctx.principal.userId, 'read', input);
    return { ...result, unreadCount: result.counts.unread };
  }),
  /** Marks every notification the caller can see in the workspace read. */
  markAllRead: memberProcedure.mutation(({ ctx, input }) =>
    ctx.services.notifications.markAllRead(ctx.principal.userId, input.workspaceId),
  ),
  /** Archives notifications (they leave the default list and the counts). */
  archive: memberProcedure
    .input(notificationBulkInput)
    .mutation(({ ctx, input }) =>
      ctx.services.notifications.changeState(ctx.principal.userId, 'archived', input),
    ),
  /** Brings archived notifications back. */
  unarchive: memberProcedure
    .input(notificationBulkInput)
    .mutation(({ ctx, input }) =>
      ctx.services.notifications.changeState(ctx.principal.userId, 'unarchived', input),
    ),
  preferences: {
    /** The caller's preferences, the workspace defaults, and what reaches them per kind. */
    get: memberProcedure
      .input(workspaceInput)
      .query(({ ctx, input }) =>
        ctx.services.notifications.preferences(ctx.principal.userId, input.workspaceId),
      ),
    /** Changes the caller's preferences, or (admins, `scope: 'workspace'`) the workspace defaults. */
    set: memberProcedure
      .input(notificationPreferencesSetInput)
      .mutation(({ ctx, input }) => ctx.services.notifications.setPreferences(ctx.principal, input)),
  },
  /**
   * The caller's feed, live: notifications, reads, seen / archive changes and preference changes,
   * each with the new counts; resumable with `lastEventId` (the same ids as `onNotification`).
   */
  onFeed: memberProcedure.input(notificationSubscribeInput).subscription(({ ctx, input, signal }) =>
    ctx.services.notifications.subscribeFeed({
      userId: ctx.principal.userId,
      workspaceId: input.workspaceId,
      lastEventId: input.lastEventId,
      signal,
    }),
  ),
  /** The caller's notifications and reads, live; resumable with `lastEventId`. */
  onNotification: memberProcedure.input(notificationSubscribeInput).subscription(({ ctx, input, signal }) =>
    ctx.services.notifications.subscribe({
      userId: ctx.principal.userId,
      workspaceId: input.workspaceId,
      lastEventId: input.lastEventId,
      signal,
    }),
  ),
} satisfies TRPCRouterRecord;
