import { dashboardRouter } from './dashboard/dashboard.router.js';
import { inboxRouter } from './inbox/inbox.router.js';
import { notificationsRouter } from './notifications/notifications.router.js';
import { presenceRouter } from './presence/presence.router.js';
import { statsRouter } from './stats/stats.router.js';
import { router } from './trpc.js';

/** The whole Pulse API. Procedure paths are the contract (ARCHITECTURE.md §6). */
export const appRouter = router({
  presence: presenceRouter,
  notifications: notificationsRouter,
  dashboard: dashboardRouter,
  inbox: inboxRouter,
  stats: statsRouter,
});

export type AppRouter = typeof appRouter;
