/**
 * `@pulse/server/contract`: the API contract a browser client types against, and nothing else.
 * Types only (the JS module is empty): the procedures with their inputs and outputs, the error
 * shape, and every domain's event and record types. It names no server internals (no context,
 * services, store or logger), so its bundled declarations need only `@trpc/server` and `zod`.
 * `@pulse/client` and `@pulse/react` inline these declarations into their own at build time.
 */
import type { TRPC_ERROR_CODE_KEY, TRPC_ERROR_CODE_NUMBER, TRPCBuiltRouter } from '@trpc/server';
import type { dashboardRouter } from './dashboard/dashboard.router.js';
import type { inboxRouter } from './inbox/inbox.router.js';
import type { notificationsRouter } from './notifications/notifications.router.js';
import type { presenceRouter } from './presence/presence.router.js';
import type { statsRouter } from './stats/stats.router.js';

/** One zod issue as the server reports it in `error.data.issues` on BAD_REQUEST. */
export interface PulseValidationIssue {
  path: string[];
  message: string;
  code: string;
}

/** The error shape of every Pulse procedure (tRPC's default, no stack, zod issues on BAD_REQUEST). */
export interface PulseErrorShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: {
    code: TRPC_ERROR_CODE_KEY;
    httpStatus: number;
    path?: string;
    stack: undefined;
    issues?: PulseValidationIssue[];
  };
}

/** Every procedure of the Pulse API, by path (the same record as the server's `appRouter`). */
export type PulseProcedures = {
  presence: typeof presenceRouter;
  notifications: typeof notificationsRouter;
  dashboard: typeof dashboardRouter;
  inbox: typeof inboxRouter;
  stats: typeof statsRouter;
};

// NOTE: the root types name no server context: a client never sees it, and naming it would drag the
// services' types (kysely, pino, ioredis…) into every browser app's declarations.
// `contract.check.ts` proves this type stays assignable to and from the server's own `AppRouter`.
/** The Pulse router's type as a client sees it: `createTRPCClient<AppRouter>(…)`. */
export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: PulseErrorShape; transformer: false },
  PulseProcedures
>;

export type * from './auth/auth.schema.js';
export type * from './dashboard/dashboard.schema.js';
export type * from './inbox/inbox.schema.js';
export type * from './notifications/notifications.schema.js';
export type * from './presence/presence.schema.js';
export type * from './stats/stats.schema.js';
