// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import { dashboardRouter } from './dashboard/dashboard.router.js';
import { inboxRouter } from './inbox/inbox.router.js';
import { notificationsRouter } from './notifications/notifications.router.js';
import { presenceRouter } from './presence/presence.router.js';
import { statsRouter } from './stats/stats.router.js';
import { router } from './trpc.js';

/**
 * Pulse's domain routers, for an app that composes its own router with them:
 * `router({ ...pulseRouters, posts: postsRouter })` keeps every Pulse path (and the client SDK's
 * hooks) where they are.
 */
export const pulseRouters = {
  presence: presenceRouter,
  notifications: notificationsRouter,
  dashboard: dashboardRouter,
  inbox: inboxRouter,
  stats: statsRouter,
};

/** The whole Pulse API. Procedure paths are the contract (ARCHITECTURE.md §6). */
export const appRouter = router(pulseRouters);

export type AppRouter = typeof appRouter;
