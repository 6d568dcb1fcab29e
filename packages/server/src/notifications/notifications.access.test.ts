import { describe, expect, it } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  codeOf,
  issuesOf,
  storeEngines,
  type Tracked,
  waitFor,
} from '../../test/support/vitest.js';
import { type NotificationSendInput, notificationTypes } from './notifications.schema.js';

const engines = await storeEngines();

const alert = (title: string) => ({
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'warning' as const, message: title },
});

/** One valid payload per kind, and one that breaks it at `path`. */
const kinds: Record<
  (typeof notificationTypes)[number],
  { valid: Record<string, unknown>; invalid: Record<string, unknown>; path: string[] }
> = {
  mention: {
    valid: { platform: 'instagram', author: '@fan', text: 'love it', url: 'https://instagram.com/p/1' },
    invalid: { platform: 'instagram', author: '@fan', text: 'love it', url: 'not a url' },
    path: ['data', 'url'],
  },
  message: {
    valid: { conversationId: 'c1', platform: 'facebook', from: 'Dana', preview: 'Hi!' },
    invalid: { platform: 'facebook', from: 'Dana', preview: 'Hi!' },
    path: ['data', 'conversationId'],
  },
  approval: {
    valid: { postId: 'p1', requestedBy: 'Alice', status: 'pending' },
    invalid: { postId: 'p1', requestedBy: 'Alice', status: 'maybe' },
    path: ['data', 'status'],
  },
  alert: {
    valid: { alertType: 'sla', severity: 'critical', message: 'SLA breached', conversationId: 'c9' },
    invalid: { alertType: 'sla', severity: 'panic', message: 'SLA breached' },
    path: ['data', 'severity'],
  },
  post_published: {
    valid: { postId: 'p1', platform: 'linkedin', url: 'https://linkedin.com/p/1' },
    invalid: { postId: 'p1', platform: 'myspace' },
    path: ['data', 'platform'],
  },
  post_failed: {
    valid: { postId: 'p1', platform: 'tiktok', error: 'Token expired' },
    invalid: { postId: 'p1', platform: 'tiktok' },
    path: ['data', 'error'],
  },
  crisis: {
    valid: { severity: 'high', topic: 'outage', volume: 1200, sentiment: -0.8 },
    invalid: { severity: 'high', topic: 'outage', volume: -5 },
    path: ['data', 'volume'],
  },
  review: {
    valid: { platform: 'google', author: 'Sam', rating: 5, text: 'Great' },
    invalid: { platform: 'google', author: 'Sam', rating: 6 },
    path: ['data', 'rating'],
  },
};

describe.each(engines)('notifications access and state on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'a workspace-wide notification reaches every member of that workspace and nobody else',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const users = {
        alice: await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
        bob: await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
        carol: await server.token({ sub: 'carol', workspaces: { globex: 'member' } }),
      };
      await using alice = connectClient(server, users.alice);
      await using bob = connectClient(server, users.bob);
      await using carol = connectClient(server, users.carol);
      const aliceSees = collect<Tracked>();
      const bobSees = collect<Tracked>();
      const carolOwn = collect<Tracked>();
      const carolAcme = collect<Tracked>();
      alice.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, aliceSees);
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, bobSees);
      carol.trpc.notifications.onNotification.subscribe({ workspaceId: 'globex' }, carolOwn);
      carol.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, carolAcme);
      await waitFor(() => expect(carolAcme.errors).toHaveLength(1));
      expect(codeOf(carolAcme.errors[0])).toBe('FORBIDDEN');
      await synced(aliceSees, bobSees, carolOwn);

      const sent = await alice.trpc.notifications.send.mutate({ workspaceId: 'acme', ...alert('Everyone') });
      expect(sent.created).toBe(true);
      expect(sent.notification).toMatchObject({ userId: null, priority: 'normal', type: 'alert' });
      await server.publish.sendNotification('acme', 'bob', alert('Only Bob'));
      await waitFor(() => expect(bobSees.items).toHaveLength(2));
      await waitFor(() => expect(aliceSees.items).toHaveLength(1));
      // Barrier: a later workspace-wide send reaches both; nothing sent before it can still arrive.
      await server.publish.sendWorkspaceNotification('acme', alert('Barrier'));
      const titleOf = (t: Tracked) => (t.data.type === 'notification' ? t.data.notification.title : '');
      await waitFor(() => expect(bobSees.items.map(titleOf).at(-1)).toBe('Barrier'));
      await waitFor(() => expect(aliceSees.items.map(titleOf).at(-1)).toBe('Barrier'));
      expect(bobSees.items.map(titleOf)).toEqual(['Everyone', 'Only Bob', 'Barrier']);
      expect(aliceSees.items.map(titleOf)).toEqual(['Everyone', 'Barrier']);
      expect(aliceSees.items[0]?.data).toMatchObject({
        type: 'notification',
        workspaceId: 'acme',
        userId: null,
        at: expect.any(String),
        notification: { id: sent.notification.id, readAt: null },
      });
      expect(carolOwn.items).toEqual([]);
      expect(await carol.trpc.notifications.list.query({ workspaceId: 'globex' })).toEqual({
        items: [],
        nextCursor: null,
        asOf: await server.services.notifications.headId('globex'),
      });
    },
  );

  it.skipIf(engine.unavailable)(
    "a user can't list, count or mark another user's notifications; a member can't send",
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const forBob = await server.publish.sendNotification('acme', 'bob', alert('Private to Bob'));
      await server.publish.sendWorkspaceNotification('acme', alert('Everyone'));

      const aliceList = await alice.trpc.notifications.list.query({ workspaceId: 'acme' });
      expect(aliceList.items.map((n) => n.title)).toEqual(['Everyone']);
      expect(await alice.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(1);
      // Marking someone else's id is a silent no-op: nothing marked, nothing learned.
      expect(
        await alice.trpc.notifications.markRead.mutate({
          workspaceId: 'acme',
          ids: [forBob.notification.id],
        }),
      ).toEqual({
        ids: [],
        unreadCount: 1,
        counts: { unseen: 1, unread: 1 },
        asOf: await server.services.notifications.headId('acme'),
      });
      expect(await alice.trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' })).toMatchObject({
        unreadCount: 0,
      });
      expect(await bob.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(2);
      const bobList = await bob.trpc.notifications.list.query({ workspaceId: 'acme' });
      expect(bobList.items.map((n) => [n.title, n.readAt])).toEqual([
        ['Everyone', null],
        ['Private to Bob', null],
      ]);

      // Members cannot send, not even to themselves; outsiders cannot read.
      const denied = await bob.trpc.notifications.send
        .mutate({ workspaceId: 'acme', userId: 'bob', ...alert('Nope') })
        .catch((e: unknown) => e);
      expect(codeOf(denied)).toBe('FORBIDDEN');
      const outsider = connectClient(
        server,
        await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }),
      );
      for (const call of [
        () => outsider.trpc.notifications.list.query({ workspaceId: 'acme' }),
        () => outsider.trpc.notifications.unreadCount.query({ workspaceId: 'acme' }),
        () => outsider.trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' }),
        () => outsider.trpc.notifications.send.mutate({ workspaceId: 'acme', ...alert('x') }),
      ]) {
        expect(codeOf(await call().catch((e: unknown) => e))).toBe('FORBIDDEN');
      }
      await outsider.close();
      expect(await bob.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(2);
    },
  );

  it.skipIf(engine.unavailable)(
    'five concurrent sends with one idempotencyKey give one notification and one delivery',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const adminToken = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
      const admins = Array.from({ length: 5 }, () => connectClient(server, adminToken));
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
      await synced(seen);

      const input: NotificationSendInput = {
        workspaceId: 'acme',
        userId: 'bob',
        idempotencyKey: 'post-42-failed',
        type: 'post_failed',
        title: 'Post 42 failed',
        data: { postId: 'p42', platform: 'instagram', error: 'Token expired' },
      };
      const results = await Promise.all(admins.map((admin) => admin.trpc.notifications.send.mutate(input)));
      expect(new Set(results.map((r) => r.notification.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      // Later retries by the same sender return the same notification too (keys are per sender).
      const retry = await server
        .callerFor({
          userId: 'alice',
          name: 'alice',
          workspaces: { acme: 'admin' },
          service: false,
          expiresAt: Date.now() + 60_000,
        })
        .notifications.send(input);
      expect(retry).toMatchObject({ created: false, notification: { id: results[0]?.notification.id } });

      await waitFor(() => expect(seen.items).toHaveLength(1));
      const list = await bob.trpc.notifications.list.query({ workspaceId: 'acme' });
      expect(list.items).toHaveLength(1);
      expect(list.items[0]).toMatchObject({ priority: 'normal', data: { retryable: false } });
      // Barrier: a later send to bob arrives; none of the five can still arrive before or after it.
      await server.publish.sendNotification('acme', 'bob', alert('Barrier'));
      await waitFor(() => expect(seen.items).toHaveLength(2));
      expect(
        seen.items.map((t) => (t.data.type === 'notification' ? t.data.notification.title : t.data.type)),
      ).toEqual(['Post 42 failed', 'Barrier']);
      await Promise.all(admins.map((admin) => admin.close()));
    },
  );

  it.skipIf(engine.unavailable)(
    'markRead in one tab updates the unread count in another tab live',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
      await using tab1 = connectClient(server, token);
      await using tab2 = connectClient(server, token);
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      const seen1 = collect<Tracked>();
      const seen2 = collect<Tracked>();
      const aliceSees = collect<Tracked>();
      tab1.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen1);
      tab2.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen2);
      alice.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, aliceSees);
      await synced(seen1, seen2, aliceSees);

      const a = await server.publish.sendNotification('acme', 'bob', alert('One'));
      const b = await server.publish.sendWorkspaceNotification('acme', alert('Two'));
      await server.publish.sendNotification('acme', 'bob', alert('Three'));
      await waitFor(() => expect(seen2.items).toHaveLength(3));

      const result = await tab1.trpc.notifications.markRead.mutate({
        workspaceId: 'acme',
        ids: [a.notification.id, b.notification.id, a.notification.id],
      });
      expect(result).toEqual({
        ids: expect.arrayContaining([a.notification.id, b.notification.id]),
        unreadCount: 1,
        counts: { unseen: 1, unread: 1 },
        asOf: await server.services.notifications.headId('acme'),
      });
      await waitFor(() => expect(seen2.items).toHaveLength(4));
      expect(seen2.items[3]?.data).toMatchObject({
        type: 'read',
        userId: 'bob',
        all: false,
        ids: expect.arrayContaining([a.notification.id, b.notification.id]),
        unreadCount: 1,
      });
      // Marking the same ids again changes nothing and emits nothing.
      expect(
        await tab1.trpc.notifications.markRead.mutate({ workspaceId: 'acme', ids: [a.notification.id] }),
      ).toEqual({
        ids: [],
        unreadCount: 1,
        counts: { unseen: 1, unread: 1 },
        asOf: await server.services.notifications.headId('acme'),
      });
      await tab2.trpc.notifications.markAllRead.mutate({ workspaceId: 'acme' });
      await waitFor(() => expect(seen1.items).toHaveLength(5));
      expect(seen1.items[4]?.data).toMatchObject({ type: 'read', all: true, unreadCount: 0 });
      expect(seen1.items.map((i) => i.data.type)).toEqual(seen2.items.map((i) => i.data.type));
      // Bob's read events never reach Alice; her copy of the workspace-wide one is still unread.
      expect(await alice.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(1);
      // Barrier: a later send to alice arrives; none of bob's read events came before it.
      await server.publish.sendNotification('acme', 'alice', alert('Barrier'));
      await waitFor(() => expect(aliceSees.items).toHaveLength(2));
      expect(aliceSees.items.map((i) => i.data.type)).toEqual(['notification', 'notification']);
    },
  );

  it.skipIf(engine.unavailable)('list pages with a cursor and filters by unreadOnly and types', async () => {
    await using store = await engine.setup();
    await using server = await startTestServer(store.options);
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const sent = [];
    for (let n = 1; n <= 5; n += 1)
      sent.push(await server.publish.sendNotification('acme', 'bob', alert(`A${n}`)));
    await server.publish.sendReviewNotification({
      workspaceId: 'acme',
      data: { platform: 'google', author: 'Sam', rating: 4 },
    });
    await bob.trpc.notifications.markRead.mutate({
      workspaceId: 'acme',
      ids: [sent[4]?.notification.id ?? ''],
    });

    const page1 = await bob.trpc.notifications.list.query({ workspaceId: 'acme', limit: 4 });
    expect(page1.items.map((n) => n.title)).toEqual([
      'New 4-star review from Sam on google',
      'A5',
      'A4',
      'A3',
    ]);
    expect(page1.nextCursor).not.toBeNull();
    const page2 = await bob.trpc.notifications.list.query({
      workspaceId: 'acme',
      limit: 4,
      cursor: page1.nextCursor ?? undefined,
    });
    expect(page2).toMatchObject({ items: [{ title: 'A2' }, { title: 'A1' }], nextCursor: null });
    const unread = await bob.trpc.notifications.list.query({
      workspaceId: 'acme',
      unreadOnly: true,
      types: ['alert'],
    });
    expect(unread.items.map((n) => n.title)).toEqual(['A4', 'A3', 'A2', 'A1']);
    const tooMany = await bob.trpc.notifications.list
      .query({ workspaceId: 'acme', limit: 101 })
      .catch((e: unknown) => e);
    expect(codeOf(tooMany)).toBe('BAD_REQUEST');
    expect(issuesOf(tooMany)[0]?.path).toEqual(['limit']);
  });

  it.skipIf(engine.unavailable)(
    "every kind's payload is validated: a wrong one is a BAD_REQUEST naming the field",
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using admin = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
      );
      for (const type of notificationTypes) {
        const { valid, invalid, path } = kinds[type];
        const ok = await admin.trpc.notifications.send.mutate({
          workspaceId: 'acme',
          type,
          title: `A ${type}`,
          data: valid,
        } as NotificationSendInput);
        expect(ok.notification).toMatchObject({ type, data: valid });
        const error = await admin.trpc.notifications.send
          .mutate({ workspaceId: 'acme', type, title: `Bad ${type}`, data: invalid } as NotificationSendInput)
          .catch((e: unknown) => e);
        expect(codeOf(error), type).toBe('BAD_REQUEST');
        expect(issuesOf(error).map((issue) => issue.path)).toContainEqual(path);
      }
      // A kind that does not exist, and a payload of the wrong kind.
      for (const bad of [
        { type: 'poke', title: 'x', data: {} },
        { type: 'review', title: 'x', data: kinds.mention.valid },
      ]) {
        const error = await admin.trpc.notifications.send
          .mutate({ workspaceId: 'acme', ...bad } as NotificationSendInput)
          .catch((e: unknown) => e);
        expect(codeOf(error)).toBe('BAD_REQUEST');
      }
      // Server code is validated by the same schemas.
      await expect(
        server.publish.sendCrisisAlert({
          workspaceId: 'acme',
          data: { severity: 'extreme', topic: 'x', volume: 1 } as never,
        }),
      ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      const list = await admin.trpc.notifications.list.query({ workspaceId: 'acme', limit: 100 });
      expect(list.items).toHaveLength(notificationTypes.length);
    },
  );
});
