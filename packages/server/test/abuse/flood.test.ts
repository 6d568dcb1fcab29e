import type { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import type { AppRouter } from '../../src/router.js';
import {
  collect,
  connectWsOnly,
  startTestServer,
  expectDrained,
  expectHealthy,
  openRaw,
  type RawSocket,
  wireCode,
} from '../support/vitest.js';

const codeOf = (error: unknown) => (error as TRPCClientError<AppRouter>).data?.code;

async function settle<T>(calls: Array<Promise<T>>) {
  const results = await Promise.allSettled(calls);
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  const codes = results.flatMap((r) => (r.status === 'rejected' ? [codeOf(r.reason)] : []));
  return { ok, codes };
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => pattern.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

/** Stops reading from the socket at the TCP level: the server's send buffer fills up. */
function stopReading(raw: RawSocket) {
  (raw.socket as unknown as { _socket: { pause(): void } })._socket.pause();
}

describe('abuse: floods', () => {
  it('a subscription flood stops at the per-socket limit with TOO_MANY_REQUESTS', async () => {
    await using server = await startTestServer({ config: { limits: { maxSubscriptions: 5 } } });
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    const frames = Array.from({ length: 12 }, (_, i) => ({
      id: i + 1,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
    }));
    raw.send(frames);
    await vi.waitFor(() =>
      expect(raw.messages.filter((m) => m.error || m.result?.type === 'data')).toHaveLength(12),
    );
    const refused = raw.messages.filter((m) => m.error);
    expect(refused).toHaveLength(7);
    expect(new Set(refused.map(wireCode))).toEqual(new Set(['TOO_MANY_REQUESTS']));
    expect(server.stats().transport.subscriptions).toBe(5);
    // Stopping one frees a slot.
    raw.send({ id: 1, method: 'subscription.stop' });
    raw.send({
      id: 100,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
    });
    await raw.next((m) => m.id === 100 && m.result?.type === 'data');
    await raw.close();
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('typing spam: one event per interval, the rest are silent no-ops; isTyping false always passes', async () => {
    await using server = await startTestServer({ config: { presence: { typingTtlMs: 5_000 } } });
    await using alice = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    await using bob = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const seen = collect<{ type: string; isTyping?: boolean }>();
    alice.trpc.presence.onTyping.subscribe({ workspaceId: 'acme', conversationId: 'c1' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    const spam = await settle(
      Array.from({ length: 30 }, () =>
        bob.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true }),
      ),
    );
    expect(spam).toEqual({ ok: 30, codes: [] });
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    await bob.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: false });
    await vi.waitFor(() => expect(seen.items.at(-1)).toMatchObject({ type: 'typing', isTyping: false }));
    // The isTyping false is the barrier: everything the spam published came before it.
    expect(seen.items.filter((e) => e.type === 'typing')).toEqual([
      expect.objectContaining({ isTyping: true }),
      expect.objectContaining({ isTyping: false }),
    ]);
    expect(await metric(server.url, /^pulse_rate_limited_total\{.*limit="typing"/)).toBe(29);
    // The no-op never hides a refusal: an outsider's typing spam is FORBIDDEN every time.
    await using eve = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }),
    );
    const outsider = await settle(
      Array.from({ length: 3 }, () =>
        eve.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true }),
      ),
    );
    expect(outsider).toEqual({ ok: 0, codes: ['FORBIDDEN', 'FORBIDDEN', 'FORBIDDEN'] });
    await eve.close();
    await alice.close();
    await bob.close();
    await expectDrained(server);
  });

  it('presence flapping is cut off at the presence limit with TOO_MANY_REQUESTS', async () => {
    await using server = await startTestServer({
      config: { limits: { presenceRatePerSec: 2, presenceBurst: 10 } },
    });
    await using alice = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    await using bob = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const seen = collect<{ type: string }>();
    alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    const flap = await settle(
      Array.from({ length: 40 }, (_, i) =>
        bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: i % 2 ? 'away' : 'online' }),
      ),
    );
    expect(flap.ok).toBeGreaterThanOrEqual(10);
    expect(flap.ok).toBeLessThanOrEqual(14);
    expect(new Set(flap.codes)).toEqual(new Set(['TOO_MANY_REQUESTS']));
    // The node still answers; another user is not affected by bob's limit.
    expect(await alice.trpc.presence.isOnline.query({ workspaceId: 'acme', userId: 'bob' })).toBe(true);
    await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    // Alice's join is the barrier: once it is there, every change bob's calls published is too.
    // Watchers got at most one event per accepted call.
    await vi.waitFor(() =>
      expect(seen.items.at(-1)).toMatchObject({ type: 'join', user: { userId: 'alice' } }),
    );
    expect(seen.items.length - 2).toBeLessThanOrEqual(flap.ok);
    await alice.close();
    await bob.close();
    await expectDrained(server);
  });

  it('mutations are limited per connection and per user across connections', async () => {
    await using server = await startTestServer({
      config: {
        limits: { rateLimitPerSec: 5, rateLimitBurst: 10, rateLimitUserPerSec: 8, rateLimitUserBurst: 15 },
      },
    });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    await using one = connectWsOnly(server.wsUrl, token);
    const send = (c: typeof one, i: number) =>
      c.trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' }).then(() => i);
    const first = await settle(Array.from({ length: 14 }, (_, i) => send(one, i)));
    expect(first.ok).toBeGreaterThanOrEqual(10);
    expect(first.ok).toBeLessThanOrEqual(12);
    expect(new Set(first.codes)).toEqual(new Set(['TOO_MANY_REQUESTS']));
    // A second connection of the same user has its own connection budget but shares the user's.
    await using two = connectWsOnly(server.wsUrl, token);
    const second = await settle(Array.from({ length: 10 }, (_, i) => send(two, i)));
    expect(second.ok).toBeLessThanOrEqual(16 - first.ok);
    expect(second.codes.length).toBeGreaterThan(0);
    expect(await metric(server.url, /^pulse_rate_limited_total\{.*limit="(connection|user)"/)).toBe(
      first.codes.length + second.codes.length,
    );
    // Queries and subscriptions are never rate limited.
    expect(await one.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(0);
    await one.close();
    await two.close();
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('a connection flood: per-user cap closes extra sockets with 4429; silent sockets time out with 4408', async () => {
    await using server = await startTestServer({
      config: { limits: { maxConnectionsPerUser: 5, authTimeoutMs: 300 } },
    });
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const sockets = await Promise.all(
      Array.from({ length: 8 }, () => openRaw(server.wsUrl, { params: { token } })),
    );
    const silent = await Promise.all(
      Array.from({ length: 20 }, () => openRaw(server.wsUrl, { params: false })),
    );
    // Exactly the sockets past the cap are closed, with 4429; the first five stay open.
    await vi.waitFor(() =>
      expect(sockets.filter((x) => x.socket.readyState === x.socket.CLOSED)).toHaveLength(3),
    );
    const refused = sockets.filter((x) => x.socket.readyState === x.socket.CLOSED);
    expect(new Set((await Promise.all(refused.map((x) => x.closed))).map((c) => c.code))).toEqual(
      new Set([4429]),
    );
    const silentCloses = await Promise.all(silent.map((s) => s.closed));
    expect(new Set(silentCloses.map((c) => c.code))).toEqual(new Set([4408]));
    // The silent sockets' auth timeout (300 ms, later than the cap) is the barrier: the first five
    // are still open after it.
    expect(sockets.filter((x) => x.socket.readyState === x.socket.OPEN)).toHaveLength(5);
    await vi.waitFor(() => expect(server.stats().transport).toMatchObject({ connections: 5, users: 1 }));
    // Other users still get in while mallory is at the cap.
    await expectHealthy(server);
    await Promise.all(sockets.map((s) => s.close()));
    await expectDrained(server);
  });

  it('a client that never answers the server PING is terminated; one that answers stays', async () => {
    await using server = await startTestServer({ config: { limits: { pingMs: 100, pongWaitMs: 150 } } });
    const token = await server.token({ sub: 'mute', workspaces: { acme: 'member' } });
    const mute = await openRaw(server.wsUrl, { params: { token } });
    const polite = await openRaw(server.wsUrl, { params: { token } });
    polite.socket.on('message', (raw) => {
      if (raw.toString() === 'PING') polite.send('PONG');
    });
    await mute.next((m) => m.text === 'PING');
    expect((await mute.closed).code).toBe(1006);
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(1));
    await polite.next((m) => m.text === 'PING');
    polite.send({
      id: 1,
      method: 'query',
      params: { path: 'presence.list', input: { workspaceId: 'acme' } },
    });
    expect(await polite.next((m) => m.id === 1)).toMatchObject({ result: { type: 'data' } });
    await polite.close();
    await expectDrained(server);
  });

  it('many users connecting and leaving at once drain to zero', async () => {
    await using server = await startTestServer();
    const clients = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const token = await server.token({ sub: `u${i}`, workspaces: { acme: 'member' } });
        const raw = await openRaw(server.wsUrl, { params: { token } });
        raw.send({
          id: 1,
          method: 'subscription',
          params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
        });
        raw.send({
          id: 2,
          method: 'mutation',
          params: { path: 'presence.set', input: { workspaceId: 'acme', status: 'online' } },
        });
        return raw;
      }),
    );
    await vi.waitFor(() =>
      expect(server.stats().transport).toMatchObject({ connections: 60, subscriptions: 60 }),
    );
    await vi.waitFor(async () =>
      expect(await server.caller.presence.list({ workspaceId: 'acme' })).toHaveLength(60),
    );
    await Promise.all(clients.map((c) => c.close()));
    await expectDrained(server);
    expect(await server.caller.presence.list({ workspaceId: 'acme' })).toEqual([]);
  });
});

describe('abuse: slow consumers', () => {
  const limits = { slowDropBytes: 32 * 1024, slowCloseBytes: 256 * 1024 };
  const big = 'x'.repeat(32 * 1024);

  it('ephemeral events past the drop mark are dropped; the socket stays open and memory bounded', async () => {
    await using server = await startTestServer({ config: { limits } });
    const token = await server.token({ sub: 'slow', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({
      id: 1,
      method: 'subscription',
      params: { path: 'presence.onTyping', input: { workspaceId: 'acme' } },
    });
    await raw.next((m) => m.id === 1 && m.result?.type === 'data');
    stopReading(raw);
    const total = 800; // 25 MiB: far more than the kernel buffers on both sides hold
    for (let i = 0; i < total; i++) {
      await server.services.hub.publish('typing:acme', {
        type: 'typing',
        workspaceId: 'acme',
        at: new Date().toISOString(),
        conversationId: 'c1',
        userId: `u${i}`,
        name: big,
        isTyping: true,
      });
    }
    await vi.waitFor(async () => {
      const delivered = await metric(server.url, /^pulse_events_delivered_total\{.*kind="typing"/);
      const dropped = await metric(server.url, /^pulse_events_dropped_total\{.*reason="slow"/);
      expect(delivered + dropped).toBe(total);
      expect(dropped).toBeGreaterThan(0);
    });
    expect(server.stats().transport.connections).toBe(1);
    await expectHealthy(server);
    raw.socket.terminate();
    await expectDrained(server);
  });

  it('a durable stream past the close mark closes the socket with 4008 instead of buffering', async () => {
    await using server = await startTestServer({ config: { limits } });
    const token = await server.token({ sub: 'slow', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({
      id: 1,
      method: 'subscription',
      params: { path: 'notifications.onNotification', input: { workspaceId: 'acme' } },
    });
    await raw.next((m) => m.id === 1 && m.result?.type === 'started');
    stopReading(raw);
    let closed = false;
    void raw.closed.then(() => {
      closed = true;
    });
    // Frames as the notification relay would publish them (ids in stream order), large and many.
    const huge = 'x'.repeat(60 * 1024);
    for (let i = 1; i <= 1_000 && !closed; i++) {
      await server.services.hub.publish(
        'notifications:acme',
        {
          type: 'notification',
          workspaceId: 'acme',
          at: new Date().toISOString(),
          userId: null,
          padding: huge,
        },
        String(i),
      );
      // A turn of the event loop (I/O included) now and then, so the socket's buffer fills.
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // The server gave up on the socket: nothing more is queued for it.
    await vi.waitFor(async () =>
      expect(await metric(server.url, /^pulse_events_dropped_total\{.*reason="slow"/)).toBeGreaterThan(0),
    );
    // Reading again, the client finds the close frame behind what was buffered.
    (raw.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await raw.closed).code).toBe(4008);
    expect(raw.messages.filter((m) => m.result?.type === 'data').length).toBeLessThan(1_000);
    await expectHealthy(server);
    await expectDrained(server);
  });
});
