import { getTRPCErrorFromUnknown, initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { type Access, assertAccess } from './auth/access.js';
import { idSchema, type Principal } from './auth/auth.schema.js';
import type { PulseContext } from './context.js';
import { assertNoNul } from './infra/input-guard.js';

export type { PulseContext } from './context.js';
// NOTE: re-exported for the domain services that still import them from here; new code imports
// auth/access.ts (loading it does not run initTRPC).
export { type Access, assertAccess, canAccess } from './auth/access.js';

/** What a client sees instead of an internal failure's own text (driver errors name hosts, tables, bytes). */
export const INTERNAL_MESSAGE = 'Internal server error';

const t = initTRPC.context<PulseContext>().create({
  isDev: false,
  // NOTE: subscriptions are served over the WebSocket only (docs/security.md "Decisions"): SSE streams
  // would bypass token expiry, connection and subscription caps, metrics and keep-alive.
  sse: { enabled: false },
  errorFormatter({ shape, error, ctx }) {
    const cause = error.cause;
    const issues =
      error.code === 'BAD_REQUEST' && cause instanceof z.ZodError
        ? cause.issues.map((issue) => ({
            path: issue.path.map(String),
            message: issue.message,
            code: issue.code,
          }))
        : undefined;
    // NOTE: the original is logged (loggedProcedure, transport onError) with the same reference.
    const reference = ctx?.requestId ?? ctx?.connectionId;
    const message =
      error.code === 'INTERNAL_SERVER_ERROR'
        ? `${INTERNAL_MESSAGE}${reference ? ` (ref ${reference})` : ''}`
        : shape.message;
    return {
      ...shape,
      message,
      data: { ...shape.data, stack: undefined, ...(issues ? { issues } : {}) },
    };
  },
});

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;

/** Every procedure's first step: inputs holding a NUL character are refused as BAD_REQUEST. */
const baseProcedure = t.procedure.use(async ({ getRawInput, next }) => {
  assertNoNul(await getRawInput());
  return next();
});

export const publicProcedure = baseProcedure;

/**
 * Requires a valid, unexpired token; mutations and queries are rate limited per connection (HTTP:
 * per user), mutations per user too (docs/security.md). Unexpected failures are logged with the
 * connection or request id (never the input: it may hold secrets).
 *
 * NOTE: one middleware for the NUL check, the token, the limits and the log, not four: tRPC copies
 * a middleware's options at every level (and the whole context on `next({ ctx })`), a cost every
 * first subscription of a new connection paid four times over (issue 21).
 */
export const authedProcedure = t.procedure.use(async ({ ctx, path, type, getRawInput, next }) => {
  assertNoNul(await getRawInput());
  let principal: Principal;
  try {
    principal = authorize(ctx);
    // NOTE: subscriptions are never limited (subscribing again after a reconnect must never trip a
    // limit; the per-connection subscription cap bounds them); backend services are trusted and exempt.
    if (type !== 'subscription' && !principal.service) {
      const limiter = ctx.services.rateLimiter;
      const userId = principal.userId;
      const connection = ctx.connectionId ?? `http:${userId}`;
      if (type === 'query') {
        await limiter.consume('query', connection);
      } else {
        await limiter.consume('connection', connection);
        await limiter.consume('user', userId);
      }
    }
  } catch (cause) {
    const error = getTRPCErrorFromUnknown(cause);
    logFailure(ctx, path, type, error);
    throw error;
  }
  // NOTE: `principal` is `ctx.principal` itself (see `authorize`), so nothing is passed to `next`:
  // tRPC would copy the whole context to merge it in. The cast only narrows the type as
  // `next({ ctx: { principal } })` would.
  const result = await (next as () => ReturnType<typeof next<{ principal: Principal }>>)();
  if (!result.ok) logFailure(ctx, path, type, result.error);
  return result;
});

/** Logs an unexpected failure (never the input: it may hold secrets); refusals are not logged. */
function logFailure(ctx: PulseContext, path: string, type: string, error: TRPCError): void {
  if (error.code !== 'INTERNAL_SERVER_ERROR') return;
  ctx.services.logger.error(
    { err: error.cause ?? error, path, type, connectionId: ctx.connectionId, requestId: ctx.requestId },
    'procedure failed',
  );
}

/** The caller of a request that needs one: its principal, or the refusal of its token. */
function authorize(ctx: PulseContext): Principal {
  const principal = ctx.principal;
  if (!principal) {
    // NOTE: refused tokens were counted when verified; a missing one is counted here.
    if (!ctx.authError) ctx.services.metrics.authFailure(ctx.connectionId ? 'ws' : 'http', 'missing');
    throw ctx.authError ?? new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
  }
  if (principal.expiresAt <= Date.now()) {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token expired' });
  }
  return principal;
}

export const workspaceInput = z.object({ workspaceId: idSchema });

function workspaceProcedure(level: Access) {
  return authedProcedure.input(workspaceInput).use(({ ctx, input, type, signal, next }) => {
    assertAccess(ctx.principal, input.workspaceId, level);
    if (type === 'subscription') ctx.services.stats.subscriptionStarted(input.workspaceId, signal);
    return next();
  });
}

/** Caller must belong to `input.workspaceId` (or be a service scoped to it). */
export const memberProcedure = workspaceProcedure('member');
/** Caller must be an admin of `input.workspaceId` or a service scoped to it. */
export const adminProcedure = workspaceProcedure('admin');
/** Caller must be a backend service scoped to `input.workspaceId`. */
export const serviceProcedure = workspaceProcedure('service');
