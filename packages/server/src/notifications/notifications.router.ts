// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import type { TRPCRouterRecord } from '@trpc/server';
import { adminProcedure, memberProcedure } from '../trpc.js';
import {
  notificationContentSchema,
  notificationListInput,
  notificationMarkReadInput,
  notificationSubscribeInput,
} from './notifications.schema.js';

export const notificationsRouter = {
  /** Sends a notification to one user, or to every member when `userId` is omitted (admin or service). */
  send: adminProcedure
    .input(notificationContentSchema)
    .mutation(({ ctx, input }) => ctx.services.notifications.send(ctx.principal, input)),
  /** The caller's notifications, newest first (cursor pagination, `unreadOnly`, `types`). */
  list: memberProcedure
    .input(notificationListInput)
    .query(({ ctx, input }) => ctx.services.notifications.list(ctx.principal.userId, input)),
  /** How many of the caller's notifications are unread. */
  unreadCount: memberProcedure.query(({ ctx, input }) =>
    ctx.services.notifications.unreadCount(ctx.principal.userId, input.workspaceId),
  ),
  /** Marks some of the caller's notifications read; ids that are not theirs are ignored. */
  markRead: memberProcedure
    .input(notificationMarkReadInput)
    .mutation(({ ctx, input }) => ctx.services.notifications.markRead(ctx.principal.userId, input)),
  /** Marks every notification the caller can see in the workspace read. */
  markAllRead: memberProcedure.mutation(({ ctx, input }) =>
    ctx.services.notifications.markAllRead(ctx.principal.userId, input.workspaceId),
  ),
  /** The caller's notifications and read changes, live; resumable with `lastEventId`. */
  onNotification: memberProcedure.input(notificationSubscribeInput).subscription(({ ctx, input, signal }) =>
    ctx.services.notifications.subscribe({
      userId: ctx.principal.userId,
      workspaceId: input.workspaceId,
      lastEventId: input.lastEventId,
      signal,
    }),
  ),
} satisfies TRPCRouterRecord;
