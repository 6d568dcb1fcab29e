import { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  connectClient,
  connectWsOnly,
  startTestServer,
  type TestClient,
  type TestServer,
} from '../../test/support/vitest.js';
import type { AppRouter } from '../router.js';
import type { PresenceEvent, TypingEvent } from './presence.schema.js';

type Seen = { items: PresenceEvent[] };
const bobs = (seen: Seen) =>
  seen.items.filter((e) => (e.type === 'leave' ? e.userId : 'user' in e ? e.user.userId : null) === 'bob');

/**
 * For "nothing else arrives" checks, instead of a sleep: a third user (`carol`, connected on first
 * use) changes page and the watcher waits for that change. The hub delivers in order, so once it
 * is there every change published before it has been delivered too.
 */
function presenceBarrier(server: TestServer, seen: Seen) {
  let carol: TestClient | undefined;
  let n = 0;
  const barrier = async () => {
    carol ??= connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'carol', workspaces: { acme: 'member' } }),
    );
    const page = `/barrier-${++n}`;
    await carol.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page });
    await vi.waitFor(() => expect(seen.items.some((e) => 'user' in e && e.user.page === page)).toBe(true));
  };
  return Object.assign(barrier, { [Symbol.asyncDispose]: async () => carol?.close() });
}

/**
 * Waits until the node's presence has no grace timer left: every closed socket's grace has run
 * out (the grace itself stays real here: the sockets are real, and the tRPC client's own timers
 * would stop under fake setTimeout).
 */
const graceOver = (server: TestServer) =>
  vi.waitFor(() => expect(server.stats().presence.graceTimers).toBe(0), { timeout: 5_000 });
const graceStarted = (server: TestServer, count = 1) =>
  vi.waitFor(() => expect(server.stats().presence.graceTimers).toBe(count), { timeout: 5_000 });

describe('presence', () => {
  it('two users of one workspace see each other live; another workspace gets FORBIDDEN and nothing', async () => {
    await using server = await startTestServer();
    await using alice = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } }),
    );
    await using eve = connectClient(
      server,
      await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }),
    );

    const aliceSees = collect<PresenceEvent>();
    const aliceSub = alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, aliceSees);
    const eveSees = collect<PresenceEvent>();
    const eveSub = eve.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, eveSees);
    const eveOwn = collect<PresenceEvent>();
    const eveOwnSub = eve.trpc.presence.onChange.subscribe({ workspaceId: 'globex' }, eveOwn);

    await vi.waitFor(() => expect(aliceSees.items[0]).toMatchObject({ type: 'snapshot', users: [] }));
    await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/inbox' });
    await vi.waitFor(() =>
      expect(aliceSees.items).toContainEqual(
        expect.objectContaining({
          type: 'join',
          user: expect.objectContaining({ userId: 'bob', name: 'Bob', page: '/inbox' }),
        }),
      ),
    );
    await bob.trpc.presence.set.mutate({
      workspaceId: 'acme',
      status: 'away',
      activity: { kind: 'editing', target: 'post-1' },
    });
    await vi.waitFor(() =>
      expect(aliceSees.items.at(-1)).toMatchObject({
        type: 'update',
        user: { userId: 'bob', status: 'away', activity: { kind: 'editing', target: 'post-1' } },
      }),
    );
    expect(await alice.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([
      expect.objectContaining({ userId: 'bob', status: 'away' }),
    ]);
    expect(await alice.trpc.presence.isOnline.query({ workspaceId: 'acme', userId: 'bob' })).toBe(true);

    // Eve (globex) is refused on every acme procedure and her subscription errors.
    await vi.waitFor(() => expect(eveSees.errors).toHaveLength(1));
    expect((eveSees.errors[0] as TRPCClientError<AppRouter>).data?.code).toBe('FORBIDDEN');
    for (const call of [
      () => eve.trpc.presence.list.query({ workspaceId: 'acme' }),
      () => eve.trpc.presence.get.query({ workspaceId: 'acme', userId: 'bob' }),
      () => eve.trpc.presence.isOnline.query({ workspaceId: 'acme', userId: 'bob' }),
      () => eve.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' }),
      () => eve.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true }),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TRPCClientError);
      expect((error as TRPCClientError<AppRouter>).data?.code).toBe('FORBIDDEN');
    }
    // Her own workspace never saw an acme event.
    expect(eveOwn.items.every((e) => e.workspaceId === 'globex')).toBe(true);
    expect(eveOwn.items).toHaveLength(1);
    aliceSub.unsubscribe();
    eveSub.unsubscribe();
    eveOwnSub.unsubscribe();
  });

  it('two tabs of one user are one presence; closing both gives exactly one leave after the grace', async () => {
    await using server = await startTestServer({ config: { presence: { graceMs: 300 } } });
    await using watcher = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    const seen = collect<PresenceEvent>();
    watcher.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));

    const bobToken = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    // Presence set over a socket lives as long as that socket: two ws-only clients are two tabs.
    const wsOnly = (token: string) => connectWsOnly(server.wsUrl, token);
    const t1 = wsOnly(bobToken);
    const t2 = wsOnly(bobToken);
    await t1.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/a' });
    await t2.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'away', page: '/b' });
    await vi.waitFor(() => expect(seen.items.filter((e) => e.type === 'join')).toHaveLength(1));
    const list = await watcher.trpc.presence.list.query({ workspaceId: 'acme' });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ userId: 'bob', status: 'online', page: '/b' });

    await using barrier = presenceBarrier(server, seen);
    await t1.close();
    await graceStarted(server);
    await graceOver(server);
    await barrier();
    expect(bobs(seen).filter((e) => e.type === 'leave')).toHaveLength(0);
    await t2.close();
    await vi.waitFor(() => expect(seen.items.filter((e) => e.type === 'leave')).toHaveLength(1));
    await graceOver(server);
    await barrier();
    expect(bobs(seen).filter((e) => e.type === 'leave')).toEqual([
      expect.objectContaining({ userId: 'bob' }),
    ]);
  });

  it('a reconnect within the grace produces no leave', async () => {
    await using server = await startTestServer({ config: { presence: { graceMs: 500 } } });
    await using watcher = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    const seen = collect<PresenceEvent>();
    watcher.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    const bobToken = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const first = connectWsOnly(server.wsUrl, bobToken);
    await first.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/x' });
    await using barrier = presenceBarrier(server, seen);
    await first.close();
    await graceStarted(server);
    const second = connectWsOnly(server.wsUrl, bobToken);
    await second.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/x' });
    await graceOver(server);
    await barrier();
    expect(seen.items[0]?.type).toBe('snapshot');
    expect(bobs(seen).map((e) => e.type)).toEqual(['join']);
    await second.close();
  });

  it('leave removes this connection at once; another tab of the user keeps them present', async () => {
    await using server = await startTestServer({ config: { presence: { graceMs: 60_000 } } });
    await using watcher = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    const seen = collect<PresenceEvent>();
    watcher.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    const bobToken = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    await using tab1 = connectWsOnly(server.wsUrl, bobToken);
    await using tab2 = connectWsOnly(server.wsUrl, bobToken);
    await tab1.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/a' });
    await tab2.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/b' });
    await tab1.trpc.presence.leave.mutate({ workspaceId: 'acme' });
    await using barrier = presenceBarrier(server, seen);
    await barrier();
    expect(seen.items.filter((e) => e.type === 'leave')).toHaveLength(0);
    await tab2.trpc.presence.leave.mutate({ workspaceId: 'acme' });
    // No grace: the leave comes at once although the sockets stay open.
    await vi.waitFor(() => expect(seen.items.at(-1)).toMatchObject({ type: 'leave', userId: 'bob' }));
    expect(await watcher.trpc.presence.isOnline.query({ workspaceId: 'acme', userId: 'bob' })).toBe(false);
  });

  it('typing expires by itself without a stop', async () => {
    await using server = await startTestServer({ config: { presence: { typingTtlMs: 200 } } });
    await using alice = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const seen = collect<TypingEvent>();
    alice.trpc.presence.onTyping.subscribe({ workspaceId: 'acme', conversationId: 'c1' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    await bob.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c2', isTyping: true });
    await bob.trpc.presence.typing.mutate({ workspaceId: 'acme', conversationId: 'c1', isTyping: true });
    await vi.waitFor(() =>
      expect(seen.items).toContainEqual(
        expect.objectContaining({ type: 'typing', userId: 'bob', isTyping: true }),
      ),
    );
    await vi.waitFor(() =>
      expect(seen.items.at(-1)).toMatchObject({
        type: 'typing',
        conversationId: 'c1',
        userId: 'bob',
        isTyping: false,
      }),
    );
    // The other conversation never reached a c1-only subscriber.
    expect(seen.items.filter((e) => e.type === 'typing' && e.conversationId === 'c2')).toHaveLength(0);
  });
});
