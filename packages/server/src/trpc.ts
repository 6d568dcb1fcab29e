import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { type Access, assertAccess } from './auth/access.js';
import { idSchema } from './auth/auth.schema.js';
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

/** Logs unexpected failures with the connection or request id (never the input: it may hold secrets). */
const loggedProcedure = baseProcedure.use(async ({ ctx, path, type, next }) => {
  const result = await next();
  if (!result.ok && result.error.code === 'INTERNAL_SERVER_ERROR') {
    ctx.services.logger.error(
      {
        err: result.error.cause ?? result.error,
        path,
        type,
        connectionId: ctx.connectionId,
        requestId: ctx.requestId,
      },
      'procedure failed',
    );
  }
  return result;
});

/**
 * Requires a valid, unexpired token; mutations and queries are rate limited per connection (HTTP:
 * per user), mutations per user too (docs/security.md).
 */
export const authedProcedure = loggedProcedure
  .use(({ ctx, next }) => {
    const principal = ctx.principal;
    if (!principal) {
      // NOTE: refused tokens were counted when verified; a missing one is counted here.
      if (!ctx.authError) ctx.services.metrics.authFailure(ctx.connectionId ? 'ws' : 'http', 'missing');
      throw ctx.authError ?? new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
    }
    if (principal.expiresAt <= Date.now()) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token expired' });
    }
    return next({ ctx: { ...ctx, principal } });
  })
  .use(async ({ ctx, type, next }) => {
    // NOTE: subscriptions are never limited (subscribing again after a reconnect must never trip a
    // limit; the per-connection subscription cap bounds them); backend services are trusted and exempt.
    if (type === 'subscription' || ctx.principal.service) return next();
    const limiter = ctx.services.rateLimiter;
    const userId = ctx.principal.userId;
    const connection = ctx.connectionId ?? `http:${userId}`;
    if (type === 'query') {
      await limiter.consume('query', connection);
      return next();
    }
    await limiter.consume('connection', connection);
    await limiter.consume('user', userId);
    return next();
  });

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
