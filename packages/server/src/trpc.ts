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

/** Requires a valid, unexpired token. */
export const authedProcedure = t.procedure.use(({ ctx, next }) => {
  const principal = ctx.principal;
  if (!principal) {
    throw ctx.authError ?? new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
  }
  if (principal.expiresAt <= Date.now()) {
    throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token expired' });
  }
  return next({ ctx: { ...ctx, principal } });
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
  return authedProcedure.input(workspaceInput).use(({ ctx, input, next }) => {
    assertAccess(ctx.principal, input.workspaceId, level);
    return next();
  });
}

/** Caller must belong to `input.workspaceId` (or be a service scoped to it). */
export const memberProcedure = workspaceProcedure('member');
/** Caller must be an admin of `input.workspaceId` or a service scoped to it. */
export const adminProcedure = workspaceProcedure('admin');
/** Caller must be a backend service scoped to `input.workspaceId`. */
export const serviceProcedure = workspaceProcedure('service');
