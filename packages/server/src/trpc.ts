import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { idSchema, type Principal } from './auth/auth.schema.js';
import type { PulseServices } from './services.js';

/** Per-request (HTTP) or per-connection (WebSocket) context. */
export interface PulseContext {
  /** The verified caller, or null when no valid token was presented. */
  principal: Principal | null;
  /** Why the token was refused, reported when a procedure needs a principal. */
  authError: TRPCError | null;
  /** Set for WebSocket connections: presence and limits are tracked per connection. */
  connectionId: string | null;
  /** Set for HTTP requests (logs). */
  requestId?: string;
  services: PulseServices;
}

const t = initTRPC.context<PulseContext>().create({
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const issues =
      error.code === 'BAD_REQUEST' && cause instanceof z.ZodError
        ? cause.issues.map((issue) => ({
            path: issue.path.map(String),
            message: issue.message,
            code: issue.code,
          }))
        : undefined;
    return { ...shape, data: { ...shape.data, stack: undefined, ...(issues ? { issues } : {}) } };
  },
});

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure;

/** Logs unexpected failures with the connection or request id (never the input: it may hold secrets). */
const loggedProcedure = t.procedure.use(async ({ ctx, path, type, next }) => {
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

/** Requires a valid, unexpired token; mutations are rate limited (docs/security.md). */
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
  .use(async ({ ctx, type, path, getRawInput, next }) => {
    // NOTE: mutations only (subscribing again after a reconnect must never trip a limit); backend
    // services are trusted publishers and exempt.
    if (type !== 'mutation' || ctx.principal.service) return next();
    const limiter = ctx.services.rateLimiter;
    const userId = ctx.principal.userId;
    await limiter.consume('connection', ctx.connectionId ?? `http:${userId}`);
    await limiter.consume('user', userId);
    if (path !== 'presence.set' && path !== 'presence.typing') return next();
    const raw = (await getRawInput()) as {
      workspaceId?: unknown;
      conversationId?: unknown;
      isTyping?: unknown;
    };
    const workspaceId = typeof raw?.workspaceId === 'string' ? raw.workspaceId.slice(0, 128) : '';
    if (path === 'presence.set') {
      await limiter.consume('presence', `${userId}:${workspaceId}`);
      return next();
    }
    const conversationId = raw?.conversationId;
    if (
      raw?.isTyping === true &&
      idSchema.safeParse(conversationId).success &&
      canAccess(ctx.principal, workspaceId, 'member') &&
      (await limiter.typingThrottled(`${userId}:${workspaceId}:${conversationId}`))
    ) {
      // NOTE: a typing refresh inside the interval is accepted as a no-op (the indicator is already
      // shown and expires by itself); `isTyping: false` always passes.
      return { ok: true as const, data: { ok: true as const }, marker: 'middlewareMarker' as never, ctx };
    }
    return next();
  });

export type Access = 'member' | 'admin' | 'service';

/** Whether `principal` may act on `workspaceId` at the given level. Services may do anything in their scope. */
export function canAccess(principal: Principal, workspaceId: string, level: Access): boolean {
  if (principal.service) {
    const scope = Object.keys(principal.workspaces);
    return scope.length === 0 || scope.includes(workspaceId);
  }
  if (level === 'service') return false;
  const role = principal.workspaces[workspaceId];
  if (!role) return false;
  return level === 'member' || role === 'admin';
}

/** Throws FORBIDDEN unless `principal` has `level` access to `workspaceId`. */
export function assertAccess(principal: Principal, workspaceId: string, level: Access): void {
  if (!canAccess(principal, workspaceId, level)) {
    const what = level === 'member' ? 'a member of' : level === 'admin' ? 'an admin of' : 'a service for';
    throw new TRPCError({ code: 'FORBIDDEN', message: `Not ${what} workspace "${workspaceId}"` });
  }
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
