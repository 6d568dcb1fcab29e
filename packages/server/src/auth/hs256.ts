import { isUtf8 } from 'node:buffer';
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { JWTPayload } from 'jose';

/** The checks `jwtVerify` is given for an HS256 token (Pulse passes no `typ`, `crit`, clock tolerance or max age). */
export interface Hs256Checks {
  requiredClaims: readonly string[];
  issuer?: string | readonly string[];
  audience?: string | readonly string[];
}

/**
 * Verifies a plain HS256 token synchronously with node:crypto, or returns `undefined`:
 * "not decided, ask jose". `now` is epoch seconds (jose's `currentDate`, floored).
 */
export type Hs256FastPath = (token: string, checks: Hs256Checks, now: number) => JWTPayload | undefined;

/** Header members the fast path knows jose ignores for a compact HS256 JWS verified with a fixed key. */
const PLAIN_HEADER = new Set(['alg', 'typ', 'kid']);

/**
 * The synchronous HS256 fast path (jose's `jwtVerify` runs HMAC as an async WebCrypto job, about
 * ten times the cost of node:crypto's `createHmac` for a token this size).
 *
 * It may only ACCEPT. Whatever is not the plain case (a header member other than `alg`/`typ`/`kid`,
 * `crit`, `b64`, any alg but HS256, base64url that is not strict and canonical, bytes that are not
 * UTF-8, a payload that is not a JSON object, a claim of an odd type) and every failed check
 * (signature, `exp`, `nbf`, `iss`, `aud`, a required claim) returns `undefined`, and the caller runs
 * jose, which gives the canonical refusal (or acceptance). Each check below is the one jose's
 * `jwtVerify` makes with the same options, or a stricter one; so a token accepted here is one jose
 * accepts with the same payload (the differential test in hs256.test.ts holds it to that).
 */
export function createHs256FastPath(secret: Uint8Array): Hs256FastPath {
  const key: KeyObject = createSecretKey(secret);
  /** Header segments already found plain (see `isPlainHeader`). */
  const plainHeaders = new Set<string>();
  return (token, checks, now) => {
    const dot1 = token.indexOf('.');
    if (dot1 <= 0) return undefined;
    const dot2 = token.indexOf('.', dot1 + 1);
    // NOTE: a 32-byte signature is exactly 43 base64url characters, the last segment.
    if (dot2 < 0 || token.length - dot2 - 1 !== 43 || token.indexOf('.', dot2 + 1) >= 0) return undefined;

    // NOTE: whether a header segment is plain depends on its text only, and an issuer's tokens
    // share a few headers: those seen plain are kept (a handful at most) and not decoded again.
    const headerSegment = token.slice(0, dot1);
    if (!plainHeaders.has(headerSegment)) {
      if (!isPlainHeader(parseSegment(token, 0, dot1))) return undefined;
      if (plainHeaders.size < PLAIN_HEADERS_KEPT) plainHeaders.add(headerSegment);
    }

    const signature = strictBase64url(token, dot2 + 1, token.length);
    if (signature?.length !== 32) return undefined;
    // The segments are strict base64url, so the signing input is ASCII: 'latin1' is its bytes.
    const expected = createHmac('sha256', key).update(token.slice(0, dot2), 'latin1').digest();
    if (!timingSafeEqual(expected, signature)) return undefined;

    const claims = parseSegment(token, dot1 + 1, dot2);
    if (!isPlainObject(claims)) return undefined;
    for (const claim of checks.requiredClaims) {
      if (!Object.hasOwn(claims, claim)) return undefined;
    }
    const { issuer, audience } = checks;
    if (issuer !== undefined) {
      const iss = claims.iss;
      if (typeof iss !== 'string') return undefined;
      if (typeof issuer === 'string' ? iss !== issuer : !issuer.includes(iss)) return undefined;
    }
    if (audience !== undefined) {
      const aud = claims.aud;
      const wanted: readonly string[] = typeof audience === 'string' ? [audience] : audience;
      if (typeof aud === 'string') {
        if (!wanted.includes(aud)) return undefined;
      } else if (Array.isArray(aud)) {
        if (!aud.every((a) => typeof a === 'string') || !wanted.some((a) => aud.includes(a)))
          return undefined;
      } else {
        return undefined;
      }
    }
    const { iat, nbf, exp } = claims;
    if (iat !== undefined && !Number.isFinite(iat)) return undefined;
    if (nbf !== undefined && !(Number.isFinite(nbf) && (nbf as number) <= now)) return undefined;
    // NOTE: jose refuses `exp <= now` (expired at its second), and Pulse always requires `exp`.
    if (!(Number.isFinite(exp) && (exp as number) > now)) return undefined;
    return claims as JWTPayload;
  };
}

/** Distinct plain header segments a fast path keeps. */
const PLAIN_HEADERS_KEPT = 16;

/** A decoded header the fast path may go on with: HS256, no member but `alg`, `typ`, `kid`, those strings. */
function isPlainHeader(header: unknown): boolean {
  if (!isPlainObject(header) || header.alg !== 'HS256') return false;
  for (const name in header) {
    if (!PLAIN_HEADER.has(name)) return false;
  }
  if (header.typ !== undefined && typeof header.typ !== 'string') return false;
  if (header.kid !== undefined && typeof header.kid !== 'string') return false;
  return true;
}

/**
 * Decodes `token[start, end)` if it is strict canonical base64url: only [A-Za-z0-9_-], no padding,
 * no length ≡ 1 (mod 4), zero unused trailing bits. Re-encoding the bytes gives back the exact
 * segment only then (Buffer's decoder itself is lenient).
 */
function strictBase64url(token: string, start: number, end: number): Buffer | undefined {
  const segment = token.slice(start, end);
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : undefined;
}

/** A segment's JSON, or `undefined` when it is not strict base64url of UTF-8 JSON. */
function parseSegment(token: string, start: number, end: number): unknown {
  if (end <= start) return undefined;
  const bytes = strictBase64url(token, start, end);
  // NOTE: jose decodes with a fatal UTF-8 decoder; Buffer would replace bad bytes with U+FFFD.
  if (!bytes || !isUtf8(bytes)) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** What JSON.parse gives for `{…}` (never an array, null or a primitive). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
