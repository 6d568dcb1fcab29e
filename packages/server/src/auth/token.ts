import { TRPCError } from '@trpc/server';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { PulseConfig } from '../config.js';
import { claimsSchema, type Principal, type WorkspaceRole } from './auth.schema.js';

export interface TokenVerifier {
  verify(token: unknown): Promise<Principal>;
}

/** Creates a verifier pinned to HS256 with `exp` required and `iss`/`aud` checked when configured. */
export function createTokenVerifier(jwt: PulseConfig['jwt']): TokenVerifier {
  const key = new TextEncoder().encode(jwt.secret);
  return {
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0) {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
      }
      if (token.length > 8192) {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token too large' });
      }
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          requiredClaims: ['exp', 'sub'],
          issuer: jwt.issuer,
          audience: jwt.audience,
        }));
      } catch (cause) {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: describeJoseError(cause), cause });
      }
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) {
        throw new TRPCError({
          code: 'UNAUTHORIZED',
          message: `Invalid token claims: ${claims.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        });
      }
      const c = claims.data;
      return {
        userId: c.sub,
        name: c.name ?? c.sub,
        // NOTE: no prototype, so `workspaces.constructor` & co. are never roles (issue 12 item 8).
        workspaces: Object.assign(Object.create(null) as Record<string, WorkspaceRole>, c.workspaces),
        service: c.role === 'service',
        expiresAt: c.exp * 1000,
      };
    },
  };
}

function describeJoseError(cause: unknown): string {
  if (cause instanceof joseErrors.JWTExpired) return 'Token expired';
  if (cause instanceof joseErrors.JWTClaimValidationFailed) {
    if (cause.reason === 'missing') return `Token has no "${cause.claim}" claim`;
    if (cause.reason === 'check_failed') return `Token claim "${cause.claim}" does not match`;
    return `Token claim "${cause.claim}" invalid (${cause.reason})`;
  }
  if (cause instanceof joseErrors.JOSEAlgNotAllowed) return 'Token algorithm not allowed';
  if (cause instanceof joseErrors.JWSSignatureVerificationFailed) return 'Token signature invalid';
  if (cause instanceof joseErrors.JWSInvalid || cause instanceof joseErrors.JWTInvalid)
    return 'Token malformed';
  return 'Token invalid';
}

export interface MintOptions {
  sub: string;
  name?: string;
  workspaces?: Record<string, WorkspaceRole>;
  service?: boolean;
  /** Lifetime in seconds (default 12 h). */
  expiresInSec?: number;
}

/** Signs a Pulse token with the configured secret (demo users, `npm run token`, tests). */
export async function mintToken(jwt: PulseConfig['jwt'], opts: MintOptions): Promise<string> {
  const builder = new SignJWT({
    name: opts.name ?? opts.sub,
    workspaces: opts.workspaces ?? {},
    ...(opts.service ? { role: 'service' } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresInSec ?? 12 * 3600));
  if (jwt.issuer) builder.setIssuer(jwt.issuer);
  if (jwt.audience) builder.setAudience(jwt.audience);
  return builder.sign(new TextEncoder().encode(jwt.secret));
}
