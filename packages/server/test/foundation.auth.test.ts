import { TRPCClientError } from '@trpc/client';
import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../src/router.js';
import { collect, connectClient, startTestServer, TEST_SECRET } from './support/vitest.js';

const key = new TextEncoder().encode(TEST_SECRET);
const claims = { name: 'Mallory', workspaces: { acme: 'admin' } };
const inOneHour = () => Math.floor(Date.now() / 1000) + 3600;

/** Opens a raw socket, sends connectionParams, and returns what the server answered and how it closed. */
function rawConnect(url: string, data: unknown): Promise<{ messages: unknown[]; code: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url}?connectionParams=1`);
    const messages: unknown[] = [];
    socket.on('open', () => socket.send(JSON.stringify({ method: 'connectionParams', data })));
    socket.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
    socket.on('close', (code) => resolve({ messages, code }));
    socket.on('error', reject);
  });
}

describe('tokens', () => {
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['missing token', async () => ({}), 'Missing token'],
    ['empty token', async () => ({ token: '' }), 'Missing token'],
    [
      'wrong signature',
      async () => ({
        token: await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('mallory')
          .setExpirationTime(inOneHour())
          .sign(new TextEncoder().encode('another-secret-that-is-long-enough-0123456789')),
      }),
      'Token signature invalid',
    ],
    [
      'expired',
      async () => ({
        token: await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('mallory')
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(key),
      }),
      'Token expired',
    ],
    [
      'alg none',
      async () => ({
        token: new UnsecuredJWT(claims).setSubject('mallory').setExpirationTime(inOneHour()).encode(),
      }),
      'Token algorithm not allowed',
    ],
    [
      'no exp',
      async () => ({
        token: await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').sign(key),
      }),
      'Token has no "exp" claim',
    ],
    [
      'HS512 instead of the pinned HS256',
      async () => ({
        token: await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS512' })
          .setSubject('mallory')
          .setExpirationTime(inOneHour())
          .sign(key),
      }),
      'Token algorithm not allowed',
    ],
    ['garbage', async () => ({ token: 'not.a.jwt' }), 'Token malformed'],
  ];

  it.each(cases)(
    'refuses %s with UNAUTHORIZED and close 4401 while another socket keeps working',
    async (_, params, message) => {
      await using server = await startTestServer();
      await using healthy = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
      );
      const seen = collect<unknown>();
      healthy.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
      await vi.waitFor(() => expect(seen.items).toHaveLength(1));

      const { messages, code } = await rawConnect(server.wsUrl, await params());
      expect(code).toBe(4401);
      expect(messages).toEqual([
        {
          id: null,
          error: expect.objectContaining({
            message,
            data: expect.objectContaining({ code: 'UNAUTHORIZED' }),
          }),
        },
      ]);

      // The healthy client is unaffected: it still receives live events.
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
      await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'join' })));
    },
  );

  it('checks the audience and issuer when configured', async () => {
    await using server = await startTestServer({
      config: { jwt: { audience: 'pulse', issuer: 'https://auth.example' } },
    });
    const good = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const wrongAudience = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setIssuer('https://auth.example')
      .setAudience('someone-else')
      .setExpirationTime(inOneHour())
      .sign(key);
    const wrongIssuer = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setIssuer('https://evil.example')
      .setAudience('pulse')
      .setExpirationTime(inOneHour())
      .sign(key);
    const refusedAudience = await rawConnect(server.wsUrl, { token: wrongAudience });
    expect(refusedAudience.code).toBe(4401);
    expect(refusedAudience.messages[0]).toMatchObject({
      error: { message: 'Token claim "aud" does not match' },
    });
    const refusedIssuer = await rawConnect(server.wsUrl, { token: wrongIssuer });
    expect(refusedIssuer.messages[0]).toMatchObject({
      error: { message: 'Token claim "iss" does not match' },
    });

    // Over HTTP: the same checks, as UNAUTHORIZED.
    await using client = connectClient(server, wrongAudience);
    const error = await client.trpc.presence.list.query({ workspaceId: 'acme' }).catch((e: unknown) => e);
    expect((error as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED');
    await using ok = connectClient(server, good);
    expect(await ok.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
  });

  it('a token for another workspace gets FORBIDDEN, not UNAUTHORIZED', async () => {
    await using server = await startTestServer();
    await using client = connectClient(
      server,
      await server.token({ sub: 'dave', workspaces: { globex: 'admin' } }),
    );
    const error = await client.trpc.presence.list.query({ workspaceId: 'acme' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data?.code).toBe('FORBIDDEN');
    expect((error as TRPCClientError<AppRouter>).message).toBe('Not a member of workspace "acme"');
  });

  it("ends the socket's rights when its token expires (close 4401)", async () => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' }, expiresInSec: 1 });
    const closed = new Promise<number>((resolve) => {
      const socket = new WebSocket(`${server.wsUrl}?connectionParams=1`);
      socket.on('open', () => socket.send(JSON.stringify({ method: 'connectionParams', data: { token } })));
      socket.on('close', (code) => resolve(code));
    });
    expect(await closed).toBe(4401);
  });
});
