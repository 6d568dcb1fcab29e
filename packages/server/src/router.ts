import { notificationsRouter } from './notifications/notifications.router.js';
import { presenceRouter } from './presence/presence.router.js';
import { router } from './trpc.js';

/** The whole Pulse API. Procedure paths are the contract (ARCHITECTURE.md §6). */
export const appRouter = router({
  presence: presenceRouter,
  notifications: notificationsRouter,
});

export type AppRouter = typeof appRouter;
