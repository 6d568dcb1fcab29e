import { z } from 'zod';

/**
 * Names no id may take: every property a plain object inherits (`constructor`, `__proto__`,
 * `toString`, …). An id is a key of records and maps all over Pulse; reserving these keeps a lookup
 * by client input from ever finding an inherited member.
 */
export const RESERVED_IDS: ReadonlySet<string> = new Set([
  ...Object.getOwnPropertyNames(Object.prototype),
  'prototype',
]);

/** Identifier of a workspace or user: short, printable, no separators used in topic names. */
export const idSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.@-]+$/, 'must contain only letters, digits and _ . @ -')
  .refine((id) => !RESERVED_IDS.has(id), 'is a reserved name');

export const workspaceRoleSchema = z.enum(['member', 'admin']);
export type WorkspaceRole = z.infer<typeof workspaceRoleSchema>;

/** The JWT claims Pulse understands. */
export const claimsSchema = z.object({
  sub: idSchema,
  name: z.string().max(200).optional(),
  workspaces: z.record(idSchema, workspaceRoleSchema).default({}),
  role: z.literal('service').optional(),
  exp: z.number(),
});
export type PulseClaims = z.infer<typeof claimsSchema>;

/** The verified principal attached to every request and socket. */
export interface Principal {
  userId: string;
  name: string;
  /**
   * Role per workspace. Read it with `roleIn` / `canAccess` (auth/access.ts), never by indexing:
   * a principal built in code may be a plain object with inherited members.
   */
  workspaces: Record<string, WorkspaceRole>;
  /** A backend service: may publish; limited to `workspaces` when that list is not empty. */
  service: boolean;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
}
