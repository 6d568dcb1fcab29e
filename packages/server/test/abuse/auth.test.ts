import type { TRPCClientError } from '@trpc/client';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import type { AppRouter } from '../../src/router.js';
import {
  collect,
  connectWsOnly,
  startTestServer,
  TEST_SECRET,
  expectDrained,
  expectHealthy,
  openRaw,
  wireCode,
} from '../support/vitest.js';

const key = new TextEncoder().encode(TEST_SECRET);
const claims = { name: 'Mallory', workspaces: { acme: 'admin' } };
const now = () => Math.floor(Date.now() / 1000);
const signed = (alg = 'HS256') => new SignJWT(claims).setProtectedHeader({ alg }).setSubject('mallory');
const JWT = { audience: 'pulse', issuer: 'https://auth.example' };

type Case = [name: string, params: () => Promise<unknown>, close: number, code: string];

const cases: Case[] = [
  ['no token at all', async () => ({}), 4401, 'UNAUTHORIZED'],
  ['params null', async () => null, 4401, 'UNAUTHORIZED'],
  ['an empty token', async () => ({ token: '' }), 4401, 'UNAUTHORIZED'],
  ['garbage', async () => ({ token: 'not.a.jwt' }), 4401, 'UNAUTHORIZED'],
  ['a JWE-shaped token', async () => ({ token: 'a.b.c.d.e' }), 4401, 'UNAUTHORIZED'],
  ['a 9 KB token', async () => ({ token: 'x'.repeat(9000) }), 4401, 'UNAUTHORIZED'],
  [
    'a wrong signature',
    async () => ({
      token: await signed()
        .setExpirationTime(now() + 3600)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .sign(new TextEncoder().encode('another-secret-that-is-long-enough-0123456789')),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'an expired token',
    async () => ({
      token: await signed()
        .setExpirationTime(now() - 60)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'alg none',
    async () => ({
      token: new UnsecuredJWT(claims)
        .setSubject('mallory')
        .setExpirationTime(now() + 3600)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .encode(),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'no exp',
    async () => ({ token: await signed().setAudience(JWT.audience).setIssuer(JWT.issuer).sign(key) }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'a wrong audience',
    async () => ({
      token: await signed()
        .setExpirationTime(now() + 3600)
        .setAudience('other')
        .setIssuer(JWT.issuer)
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'a wrong issuer',
    async () => ({
      token: await signed()
        .setExpirationTime(now() + 3600)
        .setAudience(JWT.audience)
        .setIssuer('https://evil.example')
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'HS512 with the right secret (algorithm pinned to HS256)',
    async () => ({
      token: await signed('HS512')
        .setExpirationTime(now() + 3600)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'RS256 signed with an attacker key (algorithm confusion)',
    async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return {
        token: await signed('RS256')
          .setExpirationTime(now() + 3600)
          .setAudience(JWT.audience)
          .setIssuer(JWT.issuer)
          .sign(privateKey),
      };
    },
    4401,
    'UNAUTHORIZED',
  ],
  [
    'nbf in the future',
    async () => ({
      token: await signed()
        .setExpirationTime(now() + 3600)
        .setNotBefore(now() + 600)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  [
    'claims of the wrong shape (workspaces as a list)',
    async () => ({
      token: await new SignJWT({ workspaces: ['acme'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('mallory')
        .setExpirationTime(now() + 3600)
        .setAudience(JWT.audience)
        .setIssuer(JWT.issuer)
        .sign(key),
    }),
    4401,
    'UNAUTHORIZED',
  ],
  // Malformed connectionParams: PARSE_ERROR and a plain close (1005) as the stock adapter, not 4401.
  ['connectionParams that are an array', async () => ['token'], 1005, 'PARSE_ERROR'],
  ['connectionParams that are a string', async () => 'token', 1005, 'PARSE_ERROR'],
  ['a token that is a number', async () => ({ token: 12345 }), 1005, 'PARSE_ERROR'],
];

describe('abuse: bad tokens', () => {
  it.each(cases)(
    'refuses %s (close %s, %s), then serves a healthy client and drains',
    async (_, params, close, code) => {
      await using server = await startTestServer({ config: { jwt: JWT } });
      const raw = await openRaw(server.wsUrl, { params: await params() });
      const { code: closeCode } = await raw.closed;
      expect(closeCode).toBe(close);
      expect(raw.messages).toEqual([
        { id: null, error: expect.objectContaining({ code: expect.any(Number) }) },
      ]);
      expect(wireCode(raw.messages[0])).toBe(code);
      await expectHealthy(server);
      await expectDrained(server);
      if (code !== 'UNAUTHORIZED') return;
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/pulse_auth_failures_total\{[^}]*transport="ws"[^}]*\} [1-9]/);
    },
  );

  it('a socket that never sends connectionParams is closed with 4408', async () => {
    await using server = await startTestServer({ config: { limits: { authTimeoutMs: 150 } } });
    const raw = await openRaw(server.wsUrl, { params: false });
    expect((await raw.closed).code).toBe(4408);
    expect(wireCode(raw.messages[0])).toBe('UNAUTHORIZED');
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('a token for another workspace gets FORBIDDEN per call; the socket stays usable', async () => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'eve', workspaces: { globex: 'admin' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({
      id: 1,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
    });
    raw.send({ id: 2, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'acme' } } });
    raw.send({ id: 3, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'globex' } } });
    expect(wireCode(await raw.next((m) => m.id === 1))).toBe('FORBIDDEN');
    expect(wireCode(await raw.next((m) => m.id === 2))).toBe('FORBIDDEN');
    expect(await raw.next((m) => m.id === 3)).toMatchObject({ result: { type: 'data', data: [] } });
    expect(server.stats().transport.subscriptions).toBe(0);
    await raw.close();
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('a token that expires while the socket is open closes it with 4401 and ends its subscriptions', async () => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' }, expiresInSec: 2 });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({
      id: 1,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
    });
    await raw.next((m) => m.id === 1 && m.result?.type === 'data');
    expect(server.stats().transport.subscriptions).toBe(1);
    const { code } = await raw.closed;
    expect(code).toBe(4401);
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('an upgrade from an Origin outside PULSE_ALLOWED_ORIGINS is refused with 403', async () => {
    await using server = await startTestServer({ config: { allowedOrigins: ['https://app.example'] } });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    await expect(
      openRaw(server.wsUrl, { params: { token }, headers: { origin: 'https://evil.example' } }),
    ).rejects.toThrow('HTTP 403');
    const allowed = await openRaw(server.wsUrl, {
      params: { token },
      headers: { origin: 'https://app.example' },
    });
    allowed.send({
      id: 1,
      method: 'query',
      params: { path: 'presence.list', input: { workspaceId: 'acme' } },
    });
    expect(await allowed.next((m) => m.id === 1)).toMatchObject({ result: { type: 'data' } });
    await allowed.close();
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('over HTTP a bad Bearer token is 401 UNAUTHORIZED on tRPC and REST alike', async () => {
    await using server = await startTestServer();
    const expired = await signed()
      .setExpirationTime(now() - 10)
      .sign(key);
    for (const authorization of [undefined, 'Bearer ', `Bearer ${expired}`, 'Basic abc']) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const input = encodeURIComponent(JSON.stringify({ workspaceId: 'acme' }));
      const trpc = await fetch(`${server.url}/trpc/presence.list?input=${input}`, { headers });
      expect(trpc.status).toBe(401);
      const rest = await fetch(`${server.url}/realtime/presence/workspace/acme`, { headers });
      expect(rest.status).toBe(401);
      expect(await rest.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
    // A valid token still works, and a wrong workspace is 403.
    await using client = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const seen = collect();
    client.trpc.presence.onChange.subscribe({ workspaceId: 'globex' }, seen);
    await vi.waitFor(() => expect(seen.errors).toHaveLength(1));
    expect((seen.errors[0] as TRPCClientError<AppRouter>).data?.code).toBe('FORBIDDEN');
    await client.close();
    await expectDrained(server);
  });
});
