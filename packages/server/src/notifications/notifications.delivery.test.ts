import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  codeOf,
  storeEngines,
  type Tracked,
  waitFor,
} from '../../test/support/vitest.js';

const engines = await storeEngines();

/** Resolves after `n` turns of the event loop (a stagger that depends on no clock). */
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

const mention = (n: number) => ({
  type: 'mention' as const,
  title: `Mention ${n}`,
  data: { platform: 'twitter' as const, author: '@fan', text: `hello ${n}` },
});

const titles = (items: Tracked[]) =>
  items.map((item) => (item.data.type === 'notification' ? item.data.notification.title : item.data.type));

describe.each(engines)('notifications delivery on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'an offline user gets exactly the missed notifications in order on resume, then live ones',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });

      // Online: bob sees the first notification and remembers its id.
      const first = connectClient(server, token);
      const seen = collect<Tracked>();
      const sub = first.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
      await synced(seen);
      await server.publish.sendNotification('acme', 'bob', mention(1));
      await waitFor(() => expect(titles(seen.items)).toEqual(['Mention 1']));
      const lastEventId = seen.items[0]?.id;
      sub.unsubscribe();
      await first.close();

      // Offline: three arrive (and one for somebody else).
      for (const n of [2, 3, 4]) await server.publish.sendNotification('acme', 'bob', mention(n));
      await server.publish.sendNotification('acme', 'alice', mention(99));

      // Back: exactly the three, in order, each once, then live.
      await using again = connectClient(server, token);
      const resumed = collect<Tracked>();
      again.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId }, resumed);
      await waitFor(() => expect(resumed.items).toHaveLength(3));
      expect(titles(resumed.items)).toEqual(['Mention 2', 'Mention 3', 'Mention 4']);
      await server.publish.sendNotification('acme', 'bob', mention(5));
      await server.publish.sendNotification('acme', 'bob', mention(6));
      // Mention 6 is the barrier: once it is there, nothing of before arrives twice or late.
      await waitFor(() => expect(resumed.items).toHaveLength(5));
      expect(titles(resumed.items)).toEqual([
        'Mention 2',
        'Mention 3',
        'Mention 4',
        'Mention 5',
        'Mention 6',
      ]);
      const ids = resumed.items.map((item) => Number(item.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(resumed.errors).toEqual([]);
    },
  );

  it.skipIf(engine.unavailable)(
    'events published while the replay runs arrive exactly once, in order, with no gap',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const missed = 150;
      for (let n = 1; n <= missed; n += 1) await server.publish.sendWorkspaceNotification('acme', mention(n));
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '0' }, seen);
      // Concurrent writers race the replay: some land before it reads, some during, some after.
      const concurrent = 30;
      await Promise.all(
        Array.from({ length: concurrent }, (_, i) =>
          turns(i % 5).then(() => server.publish.sendWorkspaceNotification('acme', mention(missed + i + 1))),
        ),
      );
      await waitFor(() => expect(seen.items.length).toBeGreaterThanOrEqual(missed + concurrent), {
        timeoutMs: 10_000,
      });
      // One more send is the barrier: once it is there, no earlier one can still arrive (twice).
      await server.publish.sendWorkspaceNotification('acme', mention(missed + concurrent + 1));
      await waitFor(() => expect(titles(seen.items).at(-1)).toBe(`Mention ${missed + concurrent + 1}`));
      expect(seen.items).toHaveLength(missed + concurrent + 1);
      expect(seen.items.map((item) => item.id)).toEqual(
        Array.from({ length: missed + concurrent + 1 }, (_, i) => String(i + 1)),
      );
      expect(new Set(titles(seen.items)).size).toBe(missed + concurrent + 1);
    },
  );

  it.skipIf(engine.unavailable)(
    'a resume point older than the retention window yields a reset with the head id, then live events',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({
        ...store.options,
        config: { ...store.options.config, notifications: { retention: 3 } },
      });
      for (let n = 1; n <= 8; n += 1) await server.publish.sendNotification('acme', 'bob', mention(n));
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );

      // Within the window: plain replay of the retained events.
      const recent = collect<Tracked>();
      const recentSub = bob.trpc.notifications.onNotification.subscribe(
        { workspaceId: 'acme', lastEventId: '5' },
        recent,
      );
      await waitFor(() => expect(titles(recent.items)).toEqual(['Mention 6', 'Mention 7', 'Mention 8']));
      recentSub.unsubscribe();

      // Past it: a reset (the client refetches), carrying the head so the resume point moves on.
      const old = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: '2' }, old);
      await waitFor(() => expect(old.items).toHaveLength(1));
      expect(old.items[0]).toMatchObject({
        id: '8',
        data: { type: 'reset', workspaceId: 'acme', headId: '8' },
      });
      await server.publish.sendNotification('acme', 'bob', mention(9));
      await waitFor(() => expect(titles(old.items)).toEqual(['reset', 'Mention 9']));
      expect(old.items[1]?.id).toBe('9');
      const list = await bob.trpc.notifications.list.query({ workspaceId: 'acme', limit: 100 });
      expect(list.items).toHaveLength(9);
    },
  );

  it.skipIf(engine.unavailable)('an invalid or future lastEventId is a BAD_REQUEST', async () => {
    await using store = await engine.setup();
    await using server = await startTestServer(store.options);
    await server.publish.sendNotification('acme', 'bob', mention(1));
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    for (const lastEventId of ['abc', '-1', '7']) {
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId }, seen);
      await waitFor(() => expect(seen.errors).toHaveLength(1));
      expect(codeOf(seen.errors[0])).toBe('BAD_REQUEST');
      expect(seen.items).toEqual([]);
    }
  });

  it.skipIf(engine.unavailable)(
    'a restart keeps every notification, its read state and the stream',
    async () => {
      await using store = await engine.setup();
      let firstId: string;
      let readId: string;
      {
        await using server = await startTestServer(store.options);
        const a = await server.publish.sendNotification('acme', 'bob', mention(1));
        const b = await server.publish.sendWorkspaceNotification('acme', mention(2));
        await server.publish.sendNotification('acme', 'bob', mention(3));
        firstId = a.notification.eventId;
        readId = b.notification.id;
        const bob = server.callerFor({
          userId: 'bob',
          name: 'bob',
          workspaces: { acme: 'member' },
          service: false,
          expiresAt: Date.now() + 60_000,
        });
        await bob.notifications.markRead({ workspaceId: 'acme', ids: [readId] });
      }
      await using server = await startTestServer(store.options);
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const list = await bob.trpc.notifications.list.query({ workspaceId: 'acme' });
      expect(list.items.map((n) => [n.title, n.readAt !== null])).toEqual([
        ['Mention 3', false],
        ['Mention 2', true],
        ['Mention 1', false],
      ]);
      expect(await bob.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(2);
      // The stream survived too: resuming from the first event replays what followed, ids continue.
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme', lastEventId: firstId }, seen);
      await waitFor(() => expect(seen.items).toHaveLength(3));
      expect(seen.items.map((item) => item.data.type)).toEqual(['notification', 'notification', 'read']);
      const next = await server.publish.sendNotification('acme', 'bob', mention(4));
      expect(next.notification.eventId).toBe('5');
      await waitFor(() => expect(seen.items.at(-1)?.id).toBe('5'));
    },
  );

  it.skipIf(engine.unavailable)('a failing store write fails the call and broadcasts nothing', async () => {
    await using store = await engine.setup();
    await using server = await startTestServer(store.options);
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'admin' } });
    await using bob = connectClient(server, token);
    const seen = collect<Tracked>();
    bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
    await synced(seen);

    // The event log disappears: the notification row is written, the event insert fails, all rolls back.
    await sql`drop table pulse_notification_events`.execute(server.services.store.db);
    const error = await bob.trpc.notifications.send
      .mutate({ workspaceId: 'acme', userId: 'bob', ...mention(1) })
      .catch((e: unknown) => e);
    expect(codeOf(error)).toBe('INTERNAL_SERVER_ERROR');
    await expect(server.publish.sendWorkspaceNotification('acme', mention(2))).rejects.toMatchObject({
      code: 'INTERNAL_SERVER_ERROR',
    });
    // Barrier: an event put on the same hub topic by hand arrives; nothing of the failed sends did.
    await server.services.hub.publish(
      'notifications:acme',
      { type: 'notification', workspaceId: 'acme', at: new Date().toISOString(), userId: null },
      '1000',
    );
    await waitFor(() => expect(seen.items.map((item) => item.id)).toContain('1000'));
    expect(seen.items.map((item) => item.id)).toEqual(['1000']);
    expect(await bob.trpc.notifications.list.query({ workspaceId: 'acme' })).toEqual({
      items: [],
      nextCursor: null,
      asOf: await server.services.notifications.headId('acme'),
    });
  });
});
