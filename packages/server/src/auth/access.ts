import { TRPCError } from '@trpc/server';
import type { Principal, WorkspaceRole } from './auth.schema.js';

/** The access levels procedures ask for. */
export type Access = 'member' | 'admin' | 'service';

/** The caller's own role in `workspaceId`, or null (inherited object members never count). */
export function roleIn(principal: Principal, workspaceId: string): WorkspaceRole | null {
  return Object.hasOwn(principal.workspaces, workspaceId)
    ? (principal.workspaces[workspaceId] ?? null)
    : null;
}

/** The workspaces a principal holds a role in (for a service: its scope; empty means unscoped). */
export function workspacesOf(principal: Principal): string[] {
  return Object.keys(principal.workspaces);
}

/** True for a backend service with no workspace scope: an operator of the whole node. */
export function isOperator(principal: Principal): boolean {
  return principal.service && workspacesOf(principal).length === 0;
}

/** Whether `principal` may act on `workspaceId` at the given level. Services may do anything in their scope. */
export function canAccess(principal: Principal, workspaceId: string, level: Access): boolean {
  if (principal.service) return isOperator(principal) || roleIn(principal, workspaceId) !== null;
  if (level === 'service') return false;
  const role = roleIn(principal, workspaceId);
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
