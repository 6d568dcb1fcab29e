// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import { dashboardRouter } from './dashboard/dashboard.router.js';
import { inboxRouter } from './inbox/inbox.router.js';
import {
  type NotificationKindOptions,
  type NotificationKindSchemas,
  notificationKinds,
  notificationsRouterWith,
} from './kinds.js';
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

/** Options of `createPulseRouters` / `createPulseRouter`: the app's own notification kinds. */
export interface PulseRouterOptions<E extends NotificationKindSchemas, R extends boolean>
  extends NotificationKindOptions<R> {
  /** Kind name → zod schema of its `data`, e.g. `{ invoice_paid: z.object({ invoiceId: z.string() }) }`. */
  notificationKinds?: E;
}

/**
 * Pulse's domain routers with the app's own notification kinds: `notifications.send` validates
 * against the seed kinds plus the app's (only the app's with `replaceDefaults: true`), and
 * send / list / onNotification / onFeed are typed with them. Every path stays where it is.
 *
 * @example
 * const appRouter = router({
 *   ...createPulseRouters({ notificationKinds: { invoice_paid: invoicePaid } }),
 *   channels: channelRouter([comments]),
 * });
 */
export function createPulseRouters<
  const E extends NotificationKindSchemas = Record<never, never>,
  const R extends boolean = false,
>(options: PulseRouterOptions<E, R> = {}) {
  const kinds = notificationKinds(options.notificationKinds, { replaceDefaults: options.replaceDefaults });
  return { ...pulseRouters, notifications: notificationsRouterWith(kinds) };
}

/** `router(createPulseRouters(options))`: serve it with `startPulseServer({ router })`. */
export function createPulseRouter<
  const E extends NotificationKindSchemas = Record<never, never>,
  const R extends boolean = false,
>(options: PulseRouterOptions<E, R> = {}) {
  return router(createPulseRouters(options));
}
