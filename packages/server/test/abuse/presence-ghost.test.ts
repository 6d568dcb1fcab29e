import { describe, expect, it, vi } from 'vitest';
import { startTestServer, REDIS_URL, redisUnavailable, uniquePrefix, openRaw } from '../support/vitest.js';

const skipReason = await redisUnavailable();

describe.skipIf(skipReason !== null)('abuse: ghost presence with Redis', () => {
  it('a socket that closes while its presence.set is in flight leaves no entry after the grace', async () => {
    await using server = await startTestServer({
      config: {
        redisUrl: REDIS_URL,
        redisPrefix: uniquePrefix(),
        presence: { graceMs: 100, ttlMs: 60_000 },
        limits: { presenceRatePerSec: 1_000, presenceBurst: 1_000 },
      },
    });
    const rounds = 30;
    for (let i = 0; i < rounds; i++) {
      const token = await server.token({ sub: `ghost-${i}`, workspaces: { acme: 'member' } });
      const raw = await openRaw(server.wsUrl, { params: { token } });
      // Authenticated and answering: the context is ready before the race below.
      raw.send({ id: 1, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'acme' } } });
      await raw.next((m) => m.id === 1);
      // The set waits on the Redis rate limiter while the socket goes away under it.
      raw.send({
        id: 2,
        method: 'mutation',
        params: { path: 'presence.set', input: { workspaceId: 'acme', status: 'online' } },
      });
      raw.socket.terminate();
      await raw.closed;
    }
    // Every socket is gone: once the grace has passed for each, nobody may still be online.
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(0));
    await vi.waitFor(
      async () => expect(await server.caller.presence.list({ workspaceId: 'acme' })).toEqual([]),
      {
        timeout: 5_000,
      },
    );
    // And it stays that way (a late write would show up now; no timer is pending any more).
    await vi.waitFor(() => expect(server.stats().presence).toMatchObject({ connections: 0, graceTimers: 0 }));
    expect(await server.caller.presence.list({ workspaceId: 'acme' })).toEqual([]);
  });
});
