import type { JWTPayload } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier, type MappedClaims, mintToken } from './token.js';

const jwt = { secret: 'a-test-secret-that-is-long-enough-0123456789' };

/** A verifier whose claims mapping counts real verifications (the mapping runs after each signature check). */
function counting(cache?: false | { maxEntries?: number; ttlMs?: number }) {
  const verified: string[] = [];
  const verifier = createTokenVerifier(jwt, {
    cache,
    claims: (payload: JWTPayload): MappedClaims => {
      verified.push(String(payload.sub));
      return { userId: String(payload.sub), workspaces: { w1: 'member' } };
    },
  });
  return { verifier, verified };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('verified-token cache', () => {
  it('verifies a token once and serves the same principal to the next connection with it', async () => {
    const { verifier, verified } = counting();
    const token = await mintToken(jwt, { sub: 'u1', expiresInSec: 600 });
    const first = await verifier.verify(token);
    const second = await verifier.verify(token);
    expect(verified).toEqual(['u1']);
    expect(second).toBe(first);
    expect(second.userId).toBe('u1');
  });

  it('shares one verification between concurrent connections with the same token', async () => {
    const { verifier, verified } = counting();
    const token = await mintToken(jwt, { sub: 'u1', expiresInSec: 600 });
    const principals = await Promise.all([
      verifier.verify(token),
      verifier.verify(token),
      verifier.verify(token),
    ]);
    expect(verified).toEqual(['u1']);
    expect(new Set(principals).size).toBe(1);
  });

  it('verifies a different token string again, even for the same user', async () => {
    const { verifier, verified } = counting();
    const a = await mintToken(jwt, { sub: 'u1', expiresInSec: 600 });
    const b = await mintToken(jwt, { sub: 'u1', expiresInSec: 601 });
    expect(b).not.toBe(a);
    await verifier.verify(a);
    await verifier.verify(b);
    expect(verified).toEqual(['u1', 'u1']);
  });

  it('refuses a tampered copy of a cached token (the key is the exact string)', async () => {
    const { verifier } = counting();
    const token = await mintToken(jwt, { sub: 'u1', expiresInSec: 600 });
    await verifier.verify(token);
    // NOTE: the signature's first character, not its last: the last base64url character of a 32-byte
    // HMAC carries 2 padding bits, so A→B there can decode to the very same signature (and verify).
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const tampered = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    await expect(verifier.verify(tampered)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token signature invalid',
    });
  });

  it('never serves a token past its exp: it is verified again and refused as expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const { verifier, verified } = counting({ ttlMs: 10 * 60_000 });
    const token = await mintToken(jwt, { sub: 'u1', expiresInSec: 30 });
    await verifier.verify(token);
    vi.setSystemTime(new Date('2026-01-01T00:00:29Z'));
    await verifier.verify(token);
    expect(verified).toEqual(['u1']);
    // At exp itself, well within the cache's ttl.
    vi.setSystemTime(new Date('2026-01-01T00:00:30Z'));
    await expect(verifier.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token expired',
    });
    // The refusal is not cached either: still refused, by a fresh verification.
    await expect(verifier.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Token expired',
    });
    expect(verified).toEqual(['u1']);
  });

  it('verifies again after ttlMs (a removed signing key stops being honoured)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const { verifier, verified } = counting({ ttlMs: 5_000 });
    const token = await mintToken(jwt, { sub: 'u1', expiresInSec: 600 });
    await verifier.verify(token);
    vi.setSystemTime(new Date('2026-01-01T00:00:04.999Z'));
    await verifier.verify(token);
    expect(verified).toEqual(['u1']);
    vi.setSystemTime(new Date('2026-01-01T00:00:05Z'));
    await verifier.verify(token);
    expect(verified).toEqual(['u1', 'u1']);
  });

  it('keeps no refused token: a bad signature is refused every time', async () => {
    const { verifier } = counting();
    const other = await mintToken({ secret: 'another-secret-that-is-long-enough-987654' }, { sub: 'u1' });
    for (let i = 0; i < 2; i++) {
      await expect(verifier.verify(other)).rejects.toMatchObject({
        code: 'UNAUTHORIZED',
        message: 'Token signature invalid',
      });
    }
  });

  it('is bounded: past maxEntries the oldest token is verified again', async () => {
    const { verifier, verified } = counting({ maxEntries: 2 });
    const tokens = await Promise.all(['u1', 'u2', 'u3'].map((sub) => mintToken(jwt, { sub })));
    for (const token of tokens) await verifier.verify(token);
    await verifier.verify(tokens[2] as string);
    await verifier.verify(tokens[1] as string);
    expect(verified).toEqual(['u1', 'u2', 'u3']);
    await verifier.verify(tokens[0] as string);
    expect(verified).toEqual(['u1', 'u2', 'u3', 'u1']);
  });

  it('cache: false verifies every time', async () => {
    const { verifier, verified } = counting(false);
    const token = await mintToken(jwt, { sub: 'u1' });
    await verifier.verify(token);
    await verifier.verify(token);
    expect(verified).toEqual(['u1', 'u1']);
  });
});
