// NOTE: lets declaration emit name tRPC types that the root entry does not export (TrackedData):
// without it the .d.ts build fails with TS2742. Type-only, erased from the JS.
// biome-ignore lint/correctness/noUnusedImports: used by declaration emit only
import type * as _trpcCore from '@trpc/server/unstable-core-do-not-import';
import { dashboardRouter } from './dashboard/dashboard.router.js';
import { inboxRouter } from './inbox/inbox.router.js';
import {
  type DashboardKindSchemas,
  dashboardKinds,
  dashboardRouterWith,
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

/** Options of `createPulseRouters` / `createPulseRouter`: the app's own notification and dashboard kinds. */
export interface PulseRouterOptions<
  E extends NotificationKindSchemas,
  R extends boolean,
  D extends DashboardKindSchemas = Record<never, never>,
  DR extends boolean = false,
> extends NotificationKindOptions<R> {
  /** Kind name → zod schema of its `data`, e.g. `{ invoice_paid: z.object({ invoiceId: z.string() }) }`. */
  notificationKinds?: E;
  /**
   * Kind name → zod schema of its fields, e.g. `{ mrr: z.object({ value: z.number(), currency: z.string() }) }`:
   * `dashboard.publish` / `snapshot` / `history` / `onUpdate` serve them beside Pulse's five.
   */
  dashboardKinds?: D;
  /** `true`: the app's dashboard kinds replace Pulse's five (`replaceDefaults` is for notification kinds). */
  replaceDashboardDefaults?: DR;
}

/**
 * Pulse's domain routers with the app's own notification and dashboard kinds:
 * `notifications.send` validates against the seed kinds plus the app's (only the app's with
 * `replaceDefaults: true`), and send / list / onNotification / onFeed are typed with them;
 * `dashboard.publish` validates against Pulse's five dashboard kinds plus the app's, and publish /
 * snapshot / history / onUpdate are typed with them. Every path stays where it is.
 *
 * @example
 * const appRouter = router({
 *   ...createPulseRouters({
 *     notificationKinds: { invoice_paid: invoicePaid },
 *     dashboardKinds: { mrr: z.object({ value: z.number(), currency: z.enum(['EUR', 'USD']) }) },
 *   }),
 *   channels: channelRouter([comments]),
 * });
 */
export function createPulseRouters<
  const E extends NotificationKindSchemas = Record<never, never>,
  const R extends boolean = false,
  const D extends DashboardKindSchemas = Record<never, never>,
  const DR extends boolean = false,
>(options: PulseRouterOptions<E, R, D, DR> = {}) {
  const kinds = notificationKinds(options.notificationKinds, { replaceDefaults: options.replaceDefaults });
  const dashboard = dashboardKinds(options.dashboardKinds, {
    replaceDefaults: options.replaceDashboardDefaults,
  });
  return {
    ...pulseRouters,
    notifications: notificationsRouterWith(kinds),
    dashboard: dashboardRouterWith(dashboard),
  };
}

/** `router(createPulseRouters(options))`: serve it with `startPulseServer({ router })`. */
export function createPulseRouter<
  const E extends NotificationKindSchemas = Record<never, never>,
  const R extends boolean = false,
  const D extends DashboardKindSchemas = Record<never, never>,
  const DR extends boolean = false,
>(options: PulseRouterOptions<E, R, D, DR> = {}) {
  return router(createPulseRouters(options));
}
