import { type Principal, RESERVED_IDS, type WorkspaceRole } from './auth.schema.js';

/** `idSchema`'s pattern (auth.schema.ts). */
const ID = /^[A-Za-z0-9_.@-]+$/;

const isId = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length >= 1 &&
  value.length <= 128 &&
  ID.test(value) &&
  !RESERVED_IDS.has(value);

/**
 * The principal of a verified payload whose claims are plainly valid for `claimsSchema`, built
 * without zod; `null` when anything is not the plain case, and then the schema decides (and words
 * the refusal). Every check is the schema's own or a stricter one, so whatever this accepts, the
 * schema accepts with the same principal (held to that by the differential test in hs256.test.ts).
 */
export function plainPrincipal(payload: Record<string, unknown>): Principal | null {
  const { sub, name, workspaces, role, exp } = payload;
  if (!isId(sub) || typeof exp !== 'number' || !Number.isFinite(exp)) return null;
  if (name !== undefined && (typeof name !== 'string' || name.length > 200)) return null;
  if (role !== undefined && role !== 'service') return null;
  // NOTE: no prototype, so `workspaces.constructor` & co. are never roles (issue 12 item 8).
  const roles = Object.create(null) as Record<string, WorkspaceRole>;
  if (workspaces !== undefined) {
    if (
      typeof workspaces !== 'object' ||
      workspaces === null ||
      Object.getPrototypeOf(workspaces) !== Object.prototype
    )
      return null;
    for (const id of Object.keys(workspaces)) {
      const value = (workspaces as Record<string, unknown>)[id];
      if (!isId(id) || (value !== 'member' && value !== 'admin')) return null;
      roles[id] = value;
    }
  }
  return {
    userId: sub,
    name: name ?? sub,
    workspaces: roles,
    service: role === 'service',
    expiresAt: exp * 1000,
  };
}
