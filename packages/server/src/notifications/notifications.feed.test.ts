import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  codeOf,
  collect,
  connectClient,
  issuesOf,
  startTestServer,
  storeEngines,
  synced,
  waitFor,
} from '../../test/support/vitest.js';
import { dashboardMigrations } from '../dashboard/dashboard.tables.js';
import { inboxMigrations } from '../inbox/inbox.tables.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from '../streams/streams.tables.js';
import type { NotificationFeedEvent } from './notifications.schema.js';
import { statsMigrations } from '../stats/stats.tables.js';
import { notificationMigrations } from './notifications.tables.js';

const engines = await storeEngines();

/** What `onFeed` hands `onData`. */
interface Tracked {
  id: string;
  data: NotificationFeedEvent;
}

const alert = (title: string) => ({
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'warning' as const, message: title },
});
const review = (title: string) => ({
  type: 'review' as const,
  title,
  data: { platform: 'google' as const, author: 'Sam', rating: 4 },
});
const mention = (title: string) => ({
  type: 'mention' as const,
  title,
  data: { platform: 'x' as const, author: '@fan', text: title },
});
const message = (title: string, conversationId: string) => ({
  type: 'message' as const,
  title,
  data: { conversationId, platform: 'facebook' as const, from: 'Dana', preview: title },
});
const crisis = (title: string) => ({
  type: 'crisis' as const,
  title,
  data: { severity: 'high' as const, topic: title, volume: 10 },
});

const dataOf = (items: Tracked[]) => items.map((item) => item.data);
const titlesOf = (items: Tracked[]) =>
  items.flatMap((item) => (item.data.type === 'notification' ? [item.data.notification.title] : []));
type StateEvent = Extract<NotificationFeedEvent, { type: 'state' | 'read' }>;
const stateEvents = (items: Tracked[]) =>
  items.filter((item) => item.data.type === 'state' || item.data.type === 'read') as Array<{
    id: string;
    data: StateEvent;
  }>;

describe.each(engines)('notification feed states on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'seen, read and archived reach every tab of the user live with the counts, and replay on resume',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const bobToken = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
      await using tab1 = connectClient(server, bobToken);
      await using tab2 = connectClient(server, bobToken);
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      const seen1 = collect<Tracked>();
      const seen2 = collect<Tracked>();
      tab1.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, seen1);
      tab2.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, seen2);
      // An older client on the pre-feed stream: same ids, but only notification and read events.
      const legacy = collect<Tracked>();
      tab2.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, legacy);
      await synced(seen1, seen2, legacy);

      const one = await server.publish.sendNotification('acme', 'bob', alert('One'));
      const everyone = await server.publish.sendWorkspaceNotification('acme', alert('Everyone'));
      const three = await server.publish.sendNotification('acme', 'bob', alert('Three'));
      await waitFor(() => expect(titlesOf(seen2.items)).toEqual(['One', 'Everyone', 'Three']));
      expect(await tab1.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 3,
        unread: 3,
        asOf: expect.any(String),
      });

      // Opening the bell in tab 1: everything seen; tab 2's badge follows.
      const seenAll = await tab1.trpc.notifications.markSeen.mutate({ workspaceId: 'acme', all: true });
      expect(seenAll).toEqual({
        ids: [one.notification.id, everyone.notification.id, three.notification.id],
        counts: { unseen: 0, unread: 3 },
        // The counts are as of the change's own event.
        asOf: String(Number(three.notification.eventId) + 1),
      });
      await waitFor(() => expect(stateEvents(seen2.items)).toHaveLength(1));
      expect(stateEvents(seen2.items)[0]?.id).toBe(seenAll.asOf);
      expect(stateEvents(seen2.items)[0]?.data).toMatchObject({
        type: 'state',
        action: 'seen',
        userId: 'bob',
        all: true,
        ids: seenAll.ids,
        counts: { unseen: 0, unread: 3 },
      });

      // Reading one in tab 2, archiving another in tab 1.
      const read = await tab2.trpc.notifications.markRead.mutate({
        workspaceId: 'acme',
        ids: [everyone.notification.id],
      });
      expect(read).toEqual({
        ids: [everyone.notification.id],
        unreadCount: 2,
        counts: { unseen: 0, unread: 2 },
        asOf: String(Number(seenAll.asOf) + 1),
      });
      const archived = await tab1.trpc.notifications.archive.mutate({
        workspaceId: 'acme',
        ids: [one.notification.id],
      });
      expect(archived).toEqual({
        ids: [one.notification.id],
        counts: { unseen: 0, unread: 1 },
        asOf: String(Number(read.asOf) + 1),
      });
      await waitFor(() => expect(stateEvents(seen1.items)).toHaveLength(3));
      await waitFor(() => expect(stateEvents(seen2.items)).toHaveLength(3));
      expect(dataOf(seen1.items)).toEqual(dataOf(seen2.items));
      expect(stateEvents(seen1.items).map((e) => [e.data.type, e.data.counts])).toEqual([
        ['state', { unseen: 0, unread: 3 }],
        ['read', { unseen: 0, unread: 2 }],
        ['state', { unseen: 0, unread: 1 }],
      ]);

      // Lists by state; archived ones leave the default list.
      const list = (status?: 'all' | 'unseen' | 'unread' | 'read' | 'archived') =>
        tab1.trpc.notifications.list
          .query({ workspaceId: 'acme', ...(status ? { status } : {}) })
          .then((page) => page.items.map((n) => n.title));
      expect(await list()).toEqual(['Three', 'Everyone']);
      expect(await list('all')).toEqual(['Three', 'Everyone', 'One']);
      expect(await list('unread')).toEqual(['Three']);
      expect(await list('read')).toEqual(['Everyone']);
      expect(await list('archived')).toEqual(['One']);
      expect(await list('unseen')).toEqual([]);
      const archivedItem = (
        await tab1.trpc.notifications.list.query({ workspaceId: 'acme', status: 'archived' })
      ).items[0];
      expect(archivedItem?.archivedAt).toEqual(expect.any(String));
      expect(archivedItem?.seenAt).toEqual(expect.any(String));
      expect(archivedItem?.readAt).toBeNull();

      // Unarchive brings it back (and into the unread count).
      expect(
        await tab2.trpc.notifications.unarchive.mutate({ workspaceId: 'acme', ids: [one.notification.id] }),
      ).toEqual({
        ids: [one.notification.id],
        counts: { unseen: 0, unread: 2 },
        asOf: String(Number(archived.asOf) + 1),
      });
      expect(await list()).toEqual(['Three', 'Everyone', 'One']);
      // A change that changes nothing emits nothing.
      expect(
        await tab2.trpc.notifications.unarchive.mutate({ workspaceId: 'acme', ids: [one.notification.id] }),
      ).toEqual({ ids: [], counts: { unseen: 0, unread: 2 }, asOf: String(Number(archived.asOf) + 1) });
      await waitFor(() => expect(stateEvents(seen1.items)).toHaveLength(4));
      // (That the no-op adds no event is checked at the end, behind a barrier.)

      expect(legacy.items.map((item) => item.data.type)).toEqual([
        'notification',
        'notification',
        'notification',
        'read',
      ]);
      expect(legacy.items.map((item) => item.id)).toEqual(
        seen1.items
          .filter((item) => ['notification', 'read'].includes(item.data.type))
          .map((item) => item.id),
      );
      // State is per user: Alice's copy of the workspace-wide one is untouched.
      expect(await alice.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 1,
        unread: 1,
        asOf: expect.any(String),
      });

      // A third tab resuming from the first notification replays every state change in order.
      await using tab3 = connectClient(server, bobToken);
      const resumed = collect<Tracked>();
      tab3.trpc.notifications.onFeed.subscribe(
        { workspaceId: 'acme', lastEventId: one.notification.eventId },
        resumed,
      );
      await waitFor(() => expect(resumed.items).toHaveLength(6));
      expect(resumed.items.map((item) => item.data.type)).toEqual([
        'notification',
        'notification',
        'state',
        'read',
        'state',
        'state',
      ]);
      expect(resumed.items.map((item) => item.id)).toEqual(seen1.items.slice(1).map((item) => item.id));
      expect(resumed.items.at(-1)?.data).toMatchObject({
        action: 'unarchived',
        counts: { unseen: 0, unread: 2 },
      });

      // Barrier: a later notification. Each stream is delivered in order, so once it is on a tab an
      // event for the no-op unarchive (or any other late one) would have come before it.
      await server.publish.sendNotification('acme', 'bob', alert('Four'));
      await waitFor(() => {
        for (const c of [seen1, seen2, legacy, resumed]) expect(titlesOf(c.items)).toContain('Four');
      });
      const types = ['notification', 'notification', 'notification', 'state', 'read', 'state', 'state'];
      expect(seen1.items.map((item) => item.data.type)).toEqual([...types, 'notification']);
      expect(seen2.items.map((item) => item.data.type)).toEqual([...types, 'notification']);
      expect(resumed.items.map((item) => item.data.type)).toEqual([...types.slice(1), 'notification']);
      expect(legacy.items.map((item) => item.data.type)).toEqual([
        'notification',
        'notification',
        'notification',
        'read',
        'notification',
      ]);
    },
  );

  it.skipIf(engine.unavailable)(
    'bulk changes by kind and up to an event id touch nothing newer or of another kind',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const r1 = await server.publish.sendNotification('acme', 'bob', review('R1'));
      await server.publish.sendNotification('acme', 'bob', alert('A1'));
      const r2 = await server.publish.sendNotification('acme', 'bob', review('R2'));
      const r3 = await server.publish.sendNotification('acme', 'bob', review('R3'));
      const result = await bob.trpc.notifications.markRead.mutate({
        workspaceId: 'acme',
        all: true,
        kinds: ['review'],
        upTo: r2.notification.eventId,
      });
      expect(result.ids).toEqual([r1.notification.id, r2.notification.id]);
      expect(result.counts).toEqual({ unseen: 2, unread: 2 });
      const unread = await bob.trpc.notifications.list.query({ workspaceId: 'acme', status: 'unread' });
      expect(unread.items.map((n) => n.title)).toEqual(['R3', 'A1']);
      const archived = await bob.trpc.notifications.archive.mutate({
        workspaceId: 'acme',
        all: true,
        types: ['review'],
      });
      expect(archived.ids).toEqual([r1.notification.id, r2.notification.id, r3.notification.id]);
      expect(archived.counts).toEqual({ unseen: 1, unread: 1 });

      // Bad input is a BAD_REQUEST naming the problem.
      const neither = await bob.trpc.notifications.markSeen
        .mutate({ workspaceId: 'acme' })
        .catch((e: unknown) => e);
      expect(codeOf(neither)).toBe('BAD_REQUEST');
      expect(issuesOf(neither)[0]).toMatchObject({ path: ['ids'], message: 'pass either ids or all: true' });
      const both = await bob.trpc.notifications.archive
        .mutate({ workspaceId: 'acme', ids: ['x'], all: true })
        .catch((e: unknown) => e);
      expect(codeOf(both)).toBe('BAD_REQUEST');
      const badUpTo = await bob.trpc.notifications.markSeen
        .mutate({ workspaceId: 'acme', all: true, upTo: 'latest' })
        .catch((e: unknown) => e);
      expect(codeOf(badUpTo)).toBe('BAD_REQUEST');
      expect(issuesOf(badUpTo)[0]?.path).toEqual(['upTo']);
      const badStatus = await bob.trpc.notifications.list
        .query({ workspaceId: 'acme', status: 'hidden' as 'all' })
        .catch((e: unknown) => e);
      expect(codeOf(badStatus)).toBe('BAD_REQUEST');
      expect(issuesOf(badStatus)[0]?.path).toEqual(['status']);
      // Another user's ids are a silent no-op.
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      expect(
        await alice.trpc.notifications.archive.mutate({ workspaceId: 'acme', ids: [r3.notification.id] }),
      ).toEqual({
        ids: [],
        counts: { unseen: 0, unread: 0 },
        asOf: await server.services.notifications.headId('acme'),
      });
    },
  );

  it.skipIf(engine.unavailable)('counts stay exact under concurrent bulk changes from two tabs', async () => {
    await using store = await engine.setup();
    await using server = await startTestServer(store.options);
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    await using tab1 = connectClient(server, token);
    await using tab2 = connectClient(server, token);
    const seen = collect<Tracked>();
    tab1.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, seen);
    await synced(seen);
    const total = 40;
    const ids: string[] = [];
    for (let n = 0; n < total; n += 1) {
      const sent =
        n % 2 === 0
          ? await server.publish.sendNotification('acme', 'bob', alert(`N${n}`))
          : await server.publish.sendWorkspaceNotification('acme', alert(`N${n}`));
      ids.push(sent.notification.id);
    }
    // Overlapping id sets, an "everything" call and reads, all at once from two tabs.
    const calls = [
      ...Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? tab1 : tab2).trpc.notifications.markSeen.mutate({
          workspaceId: 'acme',
          ids: ids.slice(i * 4, i * 4 + 12),
        }),
      ),
      tab1.trpc.notifications.markSeen.mutate({ workspaceId: 'acme', all: true }),
    ];
    const reads = Array.from({ length: 4 }, (_, i) =>
      (i % 2 ? tab2 : tab1).trpc.notifications.markRead.mutate({
        workspaceId: 'acme',
        ids: ids.slice(i * 5, i * 5 + 10),
      }),
    );
    const [seenResults, readResults] = await Promise.all([Promise.all(calls), Promise.all(reads)]);
    // Each id became seen exactly once, whichever call (a read also marks seen) got there first.
    const readIds = readResults.flatMap((r) => r.ids);
    expect(new Set(readIds).size).toBe(readIds.length);
    expect(readIds.sort()).toEqual(ids.slice(0, 25).sort());
    const final = await tab2.trpc.notifications.counts.query({ workspaceId: 'acme' });
    expect(final).toEqual({
      unseen: 0,
      unread: total - 25,
      asOf: await server.services.notifications.headId('acme'),
    });
    // Every event's counts are exact at its position: replaying the changes in id order gives them.
    await waitFor(() =>
      expect(stateEvents(seen.items)).toHaveLength(
        [...seenResults, ...readResults].filter((r) => r.ids.length > 0).length,
      ),
    );
    const unseen = new Set(ids);
    const unread = new Set(ids);
    for (const event of stateEvents(seen.items)) {
      for (const id of event.data.ids) {
        unseen.delete(id);
        if (event.data.type === 'read') unread.delete(id);
      }
      expect(event.data.counts).toEqual({ unseen: unseen.size, unread: unread.size });
    }
    const ordered = seen.items.map((item) => Number(item.id));
    expect(ordered).toEqual([...ordered].sort((a, b) => a - b));
  });

  it.skipIf(engine.unavailable)(
    'the migration of an existing store keeps read state (read = seen) and adds the new states',
    async () => {
      await using store = await engine.setup();
      {
        const old = createStore({
          databaseUrl: store.options.config.databaseUrl,
          dataDir: store.options.config.dataDir,
          sqliteFile: store.options.sqliteFile,
        });
        // Every migration of the previous release (all but the ones this change adds).
        await old.migrate({
          ...statsMigrations,
          ...streamMigrations,
          '0200_dashboard': dashboardMigrations['0200_dashboard']!,
          '0300_inbox': inboxMigrations['0300_inbox']!,
          '0301_inbox_alerts': inboxMigrations['0301_inbox_alerts']!,
          '0100_notifications': notificationMigrations['0100_notifications']!,
          '1000_notification_sender_keys': notificationMigrations['1000_notification_sender_keys']!,
        });
        await sql`insert into pulse_streams (stream_key, seq, published_seq) values ('notifications:acme', 2, 2)`.execute(
          old.db,
        );
        for (const [id, seq] of [
          ['n-1', 1],
          ['n-2', 2],
        ] as const) {
          await sql`insert into pulse_notifications
              (id, workspace_id, seq, user_id, type, title, body, data, priority, idempotency_key, created_at, sender)
            values (${id}, 'acme', ${seq}, null, 'alert', ${id}, null,
              '{"alertType":"system","severity":"info","message":"old"}', 'normal', null,
              '2026-01-01T00:00:00.000Z', 'system')`.execute(old.db);
        }
        await sql`insert into pulse_notification_reads (notification_id, user_id, workspace_id, read_at)
          values ('n-1', 'bob', 'acme', '2026-01-02T00:00:00.000Z')`.execute(old.db);
        await old.close();
      }
      await using server = await startTestServer(store.options);
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const page = await bob.trpc.notifications.list.query({ workspaceId: 'acme' });
      expect(page.items.map((n) => [n.id, n.readAt, n.seenAt, n.archivedAt])).toEqual([
        ['n-2', null, null, null],
        ['n-1', '2026-01-02T00:00:00.000Z', '2026-01-02T00:00:00.000Z', null],
      ]);
      expect(await bob.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 1,
        unread: 1,
        asOf: expect.any(String),
      });
      expect(await bob.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(1);
    },
  );
});

describe.each(engines)('notification preferences on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'a muted kind is never delivered, listed or counted; the change is pushed live and applies to later sends',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      const bobToken = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
      await using bob = connectClient(server, bobToken);
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
      );
      const bobSees = collect<Tracked>();
      const aliceSees = collect<Tracked>();
      bob.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, bobSees);
      alice.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, aliceSees);
      await synced(bobSees, aliceSees);

      const before = await server.publish.sendNotification('acme', 'bob', review('Before mute'));
      const prefs = await bob.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        kinds: { review: false },
      });
      expect(prefs.effective).toMatchObject({ review: false, alert: true, crisis: true });
      expect(prefs.user).toEqual({ kinds: { review: false }, mutedConversations: [] });
      await waitFor(() =>
        expect(bobSees.items.at(-1)?.data).toMatchObject({ type: 'preferences', scope: 'user' }),
      );
      // Preference events are the user's own.
      expect(aliceSees.items.map((i) => i.data.type)).toEqual([]);

      await server.publish.sendNotification('acme', 'bob', review('Muted to Bob'));
      await server.publish.sendWorkspaceNotification('acme', review('Muted for everyone-Bob'));
      await server.publish.sendNotification('acme', 'bob', alert('Still arrives'));
      await waitFor(() => expect(titlesOf(bobSees.items)).toEqual(['Before mute', 'Still arrives']));
      await waitFor(() => expect(titlesOf(aliceSees.items)).toEqual(['Muted for everyone-Bob']));
      // 'Still arrives' was sent last: it is the barrier, nothing muted came before it (waited above).
      expect(titlesOf(bobSees.items)).toEqual(['Before mute', 'Still arrives']);
      const page = await bob.trpc.notifications.list.query({ workspaceId: 'acme', status: 'all' });
      expect(page.items.map((n) => n.title)).toEqual(['Still arrives', 'Before mute']);
      expect(await bob.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 2,
        unread: 2,
        asOf: expect.any(String),
      });
      // Marking everything never reaches the muted ones either.
      const all = await bob.trpc.notifications.markSeen.mutate({ workspaceId: 'acme', all: true });
      expect(all.ids).toHaveLength(2);
      expect(all.ids).toContain(before.notification.id);
      expect(await alice.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 1,
        unread: 1,
        asOf: expect.any(String),
      });

      // A replay from the start leaves the muted ones out too.
      await using again = connectClient(server, bobToken);
      const replay = collect<Tracked>();
      again.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme', lastEventId: '0' }, replay);
      await waitFor(() => expect(replay.items.map((i) => i.data.type)).toContain('state'));
      expect(titlesOf(replay.items)).toEqual(['Before mute', 'Still arrives']);

      // Unmuting applies to what follows; what was sent while muted stays out.
      await bob.trpc.notifications.preferences.set.mutate({ workspaceId: 'acme', kinds: { review: null } });
      await server.publish.sendNotification('acme', 'bob', review('After unmute'));
      await waitFor(() =>
        expect(titlesOf(bobSees.items)).toEqual(['Before mute', 'Still arrives', 'After unmute']),
      );
      expect(
        (await bob.trpc.notifications.list.query({ workspaceId: 'acme' })).items.map((n) => n.title),
      ).toEqual(['After unmute', 'Still arrives', 'Before mute']);
    },
  );

  it.skipIf(engine.unavailable)(
    'workspace defaults by admins, user overrides, conversation mutes and crisis alerts members cannot mute',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using admin = connectClient(
        server,
        await server.token({ sub: 'ada', workspaces: { acme: 'admin' } }),
      );
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      await using carol = connectClient(
        server,
        await server.token({ sub: 'carol', workspaces: { acme: 'member' } }),
      );
      const bobSees = collect<Tracked>();
      const carolSees = collect<Tracked>();
      bob.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, bobSees);
      carol.trpc.notifications.onFeed.subscribe({ workspaceId: 'acme' }, carolSees);
      await synced(bobSees, carolSees);

      // Members cannot change the defaults.
      const denied = await bob.trpc.notifications.preferences.set
        .mutate({ workspaceId: 'acme', scope: 'workspace', kinds: { mention: false } })
        .catch((e: unknown) => e);
      expect(codeOf(denied)).toBe('FORBIDDEN');
      // The admin mutes mentions by default: everyone gets the change live.
      await admin.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        scope: 'workspace',
        kinds: { mention: false },
      });
      await waitFor(() =>
        expect(carolSees.items.at(-1)?.data).toMatchObject({ type: 'preferences', scope: 'workspace' }),
      );
      // Bob opts back in; he also mutes one conversation.
      await bob.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        kinds: { mention: true },
        conversations: { noisy: true },
      });
      expect(await carol.trpc.notifications.preferences.get.query({ workspaceId: 'acme' })).toMatchObject({
        workspace: { kinds: { mention: false }, crisisMutable: false },
        effective: { mention: false },
      });

      await server.publish.sendWorkspaceNotification('acme', mention('Mention for all'));
      await server.publish.sendWorkspaceNotification('acme', message('From noisy', 'noisy'));
      await server.publish.sendWorkspaceNotification('acme', message('From calm', 'calm'));
      await waitFor(() => expect(titlesOf(bobSees.items)).toEqual(['Mention for all', 'From calm']));
      await waitFor(() => expect(titlesOf(carolSees.items)).toEqual(['From noisy', 'From calm']));
      expect(await bob.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 2,
        unread: 2,
        asOf: expect.any(String),
      });
      expect(await carol.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 2,
        unread: 2,
        asOf: expect.any(String),
      });

      // Crisis alerts: not mutable by members until the workspace allows it.
      const crisisDenied = await bob.trpc.notifications.preferences.set
        .mutate({ workspaceId: 'acme', kinds: { crisis: false } })
        .catch((e: unknown) => e);
      expect(codeOf(crisisDenied)).toBe('FORBIDDEN');
      expect((crisisDenied as Error).message).toBe('Crisis alerts cannot be muted in workspace "acme"');
      const wrongScope = await bob.trpc.notifications.preferences.set
        .mutate({ workspaceId: 'acme', crisisMutable: true })
        .catch((e: unknown) => e);
      expect(codeOf(wrongScope)).toBe('BAD_REQUEST');
      await admin.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        scope: 'workspace',
        crisisMutable: true,
      });
      await bob.trpc.notifications.preferences.set.mutate({ workspaceId: 'acme', kinds: { crisis: false } });
      await server.publish.sendCrisisAlert({ workspaceId: 'acme', data: crisis('Outage').data });
      await waitFor(() => expect(titlesOf(carolSees.items)).toHaveLength(3));
      expect(titlesOf(bobSees.items)).toEqual(['Mention for all', 'From calm']);
      // Taking the permission away makes crisis alerts reach Bob again, whatever he chose.
      await admin.trpc.notifications.preferences.set.mutate({
        workspaceId: 'acme',
        scope: 'workspace',
        crisisMutable: false,
      });
      await server.publish.sendCrisisAlert({ workspaceId: 'acme', data: crisis('Second outage').data });
      await waitFor(() => expect(titlesOf(bobSees.items)).toHaveLength(3));
      // The second outage is the barrier: the first, muted, never reached bob before it.
      expect(titlesOf(bobSees.items)).toEqual([
        'Mention for all',
        'From calm',
        'Crisis (high): Second outage',
      ]);
      expect(await bob.trpc.notifications.counts.query({ workspaceId: 'acme' })).toEqual({
        unseen: 3,
        unread: 3,
        asOf: expect.any(String),
      });
    },
  );
});
