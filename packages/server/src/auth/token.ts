import { TRPCError } from '@trpc/server';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import { z } from 'zod';
import type { PulseConfig } from '../config.js';
import { createHs256FastPath } from './hs256.js';
import { plainPrincipal } from './plain-claims.js';
import {
  claimsSchema,
  idSchema,
  type Principal,
  type WorkspaceRole,
  workspaceRoleSchema,
} from './auth.schema.js';

export interface TokenVerifier {
  verify(token: unknown): Promise<Principal>;
}

/** What a claims mapping returns: Pulse's view of the caller. */
export interface MappedClaims {
  userId: string;
  name?: string;
  /** Role per workspace the caller may act in (for a service: its scope; empty = every workspace). */
  workspaces?: Record<string, WorkspaceRole>;
  service?: boolean;
}

/**
 * Maps a verified token's payload (any provider's claims) onto Pulse's caller. Runs after the
 * signature, `exp`, `iss` and `aud` checks; its result is validated (ids, roles) like Pulse's own claims.
 *
 * @example
 * const claims: ClaimsMapper = (p) => ({ userId: String(p.sub), workspaces: { [String(p.org_id)]: 'member' } });
 */
export type ClaimsMapper = (payload: JWTPayload) => MappedClaims;

/** In-code options of the verifier beyond the config (`startPulseServer({ auth })`). */
export interface TokenVerifierOptions {
  /** Maps tokens of the app's identity provider onto Pulse's caller (overrides `jwt.workspaceClaim`). */
  claims?: ClaimsMapper;
  /**
   * Accept HS256 tokens signed with `jwt.secret` (default true). `startPulseServer` turns it off
   * when the secret was generated beside a key set: nobody but this process could sign with it.
   */
  hs256?: boolean;
  /**
   * HS256 tokens verified with `jwt.secret` are kept, keyed by the exact token string, so a
   * reconnecting client (or its other tabs) is not verified again: `false` turns it off. An entry is
   * dropped at the token's `exp` at the latest (then the token is verified again and refused as
   * expired) and `ttlMs` after it was verified. Refused tokens are never kept, nor tokens verified
   * against the key set (`jwksUrl`): a key removed from it stops verifying at once.
   * Default: 10,000 entries, 60 s.
   */
  cache?: false | { maxEntries?: number; ttlMs?: number };
  /**
   * Verify plain HS256 tokens synchronously with node:crypto before asking jose (default true).
   * It only ever accepts: a token it is not sure of, and every refusal, goes to jose, so the
   * outcome and the error messages are the same with it off (auth/hs256.ts).
   */
  hs256FastPath?: boolean;
}

/** Default of `TokenVerifierOptions.cache`. */
export const DEFAULT_TOKEN_CACHE = { maxEntries: 10_000, ttlMs: 60_000 };

const mappedSchema = z.object({
  userId: idSchema,
  name: z.string().max(200).optional(),
  workspaces: z.record(idSchema, workspaceRoleSchema).default({}),
  service: z.boolean().default(false),
});

/**
 * Creates a verifier: HS256 with the shared secret (when one is configured), and, with
 * `jwt.jwksUrl`, the provider's asymmetric tokens (`jwt.algorithms`, default RS256/ES256) verified
 * against its key set, fetched once, cached for `jwksCacheMs` and refetched (at most every
 * `jwksCooldownMs`) when a token names a key id it does not hold, so rotated keys are picked up and
 * removed keys stop verifying. `exp` is always required; `iss`/`aud` are checked when configured
 * (the config requires both with a key set).
 */
export function createTokenVerifier(
  jwt: PulseConfig['jwt'] | (Pick<PulseConfig['jwt'], 'secret'> & Partial<PulseConfig['jwt']>),
  opts: TokenVerifierOptions = {},
): TokenVerifier {
  const hsKey = jwt.secret && opts.hs256 !== false ? new TextEncoder().encode(jwt.secret) : null;
  const jwks = jwt.jwksUrl
    ? createRemoteJWKSet(new URL(jwt.jwksUrl), {
        cacheMaxAge: jwt.jwksCacheMs ?? 10 * 60_000,
        cooldownDuration: jwt.jwksCooldownMs ?? 30_000,
        timeoutDuration: 5_000,
      })
    : null;
  const algorithms = (jwt.algorithms ?? ['RS256', 'ES256']).filter((alg) => !alg.startsWith('HS'));
  const mapper = opts.claims ?? (jwt.workspaceClaim ? declarativeMapper(jwt) : null);
  // NOTE: imported once: given the raw bytes, jose imports a CryptoKey on every verification.
  let hsCryptoKey: Promise<CryptoKey> | null = null;
  const hsVerifyKey = () =>
    (hsCryptoKey ??= crypto.subtle.importKey(
      'raw',
      hsKey as Uint8Array<ArrayBuffer>,
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['verify'],
    ));
  const cacheOpts = opts.cache === false ? null : { ...DEFAULT_TOKEN_CACHE, ...opts.cache };
  const cache =
    hsKey && cacheOpts && cacheOpts.maxEntries > 0
      ? new TokenCache(cacheOpts.maxEntries, cacheOpts.ttlMs)
      : null;
  /** Principals of tokens verified with the shared secret (the only ones the cache keeps). */
  const bySecret = new WeakSet<Principal>();
  const fastPath = hsKey && opts.hs256FastPath !== false ? createHs256FastPath(hsKey) : null;
  const common = {
    requiredClaims: mapper ? ['exp'] : ['exp', 'sub'],
    issuer: jwt.issuer,
    audience: jwt.audience,
  };

  const verify = async (token: unknown): Promise<Principal> => {
    if (typeof token !== 'string' || token.length === 0) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Missing token' });
    }
    if (token.length > 8192) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token too large' });
    }
    // NOTE: before jose, outside its try: the fast path only accepts (never throws), and the
    // claims of a token it accepted are refused exactly as those of a token jose accepted.
    const fast = fastPath?.(token, common, Math.floor(Date.now() / 1000));
    if (fast) return claimsToPrincipal(fast, true);
    let payload: JWTPayload;
    let withSecret = false;
    try {
      let alg: string | undefined;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        // NOTE: the same answer as jwtVerify gives a token that is not a JWS.
        throw new joseErrors.JWSInvalid('Invalid Token or Protected Header formatting');
      }
      if (alg === 'HS256' && hsKey) {
        ({ payload } = await jwtVerify(token, await hsVerifyKey(), { ...common, algorithms: ['HS256'] }));
        withSecret = true;
      } else if (jwks) {
        // NOTE: pinned algorithms: a token signed with anything else (HS256 with the public key as
        // secret, `none`) is refused before a key is looked up.
        ({ payload } = await jwtVerify(token, jwks, { ...common, algorithms }));
      } else if (hsKey) {
        ({ payload } = await jwtVerify(token, await hsVerifyKey(), { ...common, algorithms: ['HS256'] }));
        withSecret = true;
      } else {
        // NOTE: no key of any kind: nothing verifies (never a default key).
        throw new joseErrors.JOSEAlgNotAllowed('no key accepts this token');
      }
    } catch (cause) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: describeJoseError(cause), cause });
    }
    return claimsToPrincipal(payload, withSecret);
  };
  /** Pulse's caller from a verified payload (the claims mapping, then the claims' schema). */
  const claimsToPrincipal = (payload: JWTPayload, withSecret: boolean): Principal => {
    const exp = (payload.exp ?? 0) * 1000;
    if (mapper) {
      let mapped: MappedClaims;
      try {
        mapped = mapper(payload);
      } catch (cause) {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Token claims could not be mapped', cause });
      }
      const m = mappedSchema.safeParse(mapped);
      if (!m.success) throw invalidClaims(m.error);
      return verified(withSecret, {
        userId: m.data.userId,
        name: m.data.name ?? m.data.userId,
        workspaces: Object.assign(Object.create(null) as Record<string, WorkspaceRole>, m.data.workspaces),
        service: m.data.service,
        expiresAt: exp,
      });
    }
    // NOTE: plainly valid claims skip zod (same principal); anything else gets the schema's refusal.
    const plain = plainPrincipal(payload);
    if (plain) return verified(withSecret, plain);
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw invalidClaims(claims.error);
    const c = claims.data;
    return verified(withSecret, {
      userId: c.sub,
      name: c.name ?? c.sub,
      // NOTE: no prototype, so `workspaces.constructor` & co. are never roles (issue 12 item 8).
      workspaces: Object.assign(Object.create(null) as Record<string, WorkspaceRole>, c.workspaces),
      service: c.role === 'service',
      expiresAt: c.exp * 1000,
    });
  };
  const verified = (withSecret: boolean, principal: Principal): Principal => {
    if (withSecret && cache) bySecret.add(principal);
    return principal;
  };
  if (!cache) return { verify };
  return {
    verify(token) {
      if (typeof token !== 'string') return verify(token);
      const hit = cache.get(token);
      if (hit) return hit;
      const pending = verify(token);
      cache.set(token, pending, (principal) => bySecret.has(principal));
      return pending;
    },
  };
}

/**
 * Verified principals by token string (insertion order = age: the oldest is evicted first). Holds
 * the verification's promise from the start, so concurrent connections with one token share one
 * verification; a refusal removes it.
 */
class TokenCache {
  private readonly entries = new Map<string, { principal: Promise<Principal>; until: number }>();
  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  get(token: string): Promise<Principal> | null {
    const entry = this.entries.get(token);
    if (!entry) return null;
    // NOTE: `<`: at the token's exp itself it is verified again (and refused), as jose would.
    if (Date.now() < entry.until) return entry.principal;
    this.entries.delete(token);
    return null;
  }

  /** Keeps `principal` while it is pending, then only if `keep` accepts what it resolved to. */
  set(token: string, principal: Promise<Principal>, keep: (principal: Principal) => boolean): void {
    const entry = { principal, until: Date.now() + this.ttlMs };
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, entry);
    principal.then(
      (p) => {
        if (this.entries.get(token) !== entry) return;
        if (!keep(p)) this.entries.delete(token);
        // Never past the token's own expiry.
        else entry.until = Math.min(entry.until, p.expiresAt);
      },
      () => {
        if (this.entries.get(token) === entry) this.entries.delete(token);
      },
    );
  }
}

function invalidClaims(error: z.ZodError): TRPCError {
  return new TRPCError({
    code: 'UNAUTHORIZED',
    message: `Invalid token claims: ${error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
  });
}

/**
 * The config's declarative mapping: `workspaceClaim` (e.g. `org_id`) names the one workspace of
 * the token; `rolesClaim` (a string or a list) gives admin (`adminRoles`), service (`serviceRole`)
 * or member; `name` (else `sub`) the display name.
 */
function declarativeMapper(jwt: Partial<PulseConfig['jwt']>): ClaimsMapper {
  const workspaceClaim = jwt.workspaceClaim as string;
  const rolesClaim = jwt.rolesClaim ?? 'roles';
  const adminRoles = new Set(jwt.adminRoles ?? ['admin']);
  const serviceRole = jwt.serviceRole ?? 'service';
  return (payload) => {
    const raw = payload[rolesClaim];
    const roles = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(' ') : [];
    const workspace = payload[workspaceClaim];
    // NOTE: no prototype: a claim value of `__proto__` is a key like any other (then refused as reserved).
    const workspaces = Object.create(null) as Record<string, WorkspaceRole>;
    if (typeof workspace === 'string') {
      workspaces[workspace] = roles.some((role) => adminRoles.has(role)) ? 'admin' : 'member';
    }
    return {
      userId: String(payload.sub ?? ''),
      name: typeof payload.name === 'string' ? payload.name : undefined,
      workspaces,
      service: roles.includes(serviceRole),
    };
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
  if (cause instanceof joseErrors.JWKSNoMatchingKey) return 'Token signed by an unknown key';
  if (cause instanceof joseErrors.JWKSTimeout || cause instanceof joseErrors.JWKSInvalid)
    return 'Token keys unavailable';
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
export async function mintToken(
  jwt: Pick<PulseConfig['jwt'], 'secret' | 'issuer' | 'audience'>,
  opts: MintOptions,
): Promise<string> {
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
