import { presenceRouter } from './presence/presence.router.js';
import { router } from './trpc.js';

/** The whole Pulse API. Procedure paths are the contract (ARCHITECTURE.md §6). */
export const appRouter = router({
  presence: presenceRouter,
});

export type AppRouter = typeof appRouter;
