import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  storeEngines,
  type Tracked,
  waitFor,
} from '../../test/support/vitest.js';
import type { Principal } from '../auth/auth.schema.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from '../streams/streams.tables.js';
import { notificationMigrations } from './notifications.tables.js';

const engines = await storeEngines();

const admin = (userId: string): Principal => ({
  userId,
  name: userId,
  workspaces: { acme: 'admin' },
  service: false,
  expiresAt: Number.POSITIVE_INFINITY,
});

const alert = (title: string, idempotencyKey: string) => ({
  workspaceId: 'acme',
  type: 'alert' as const,
  title,
  idempotencyKey,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

const titles = (items: Tracked[]) =>
  items.map((item) => (item.data.type === 'notification' ? item.data.notification.title : item.data.type));

describe.each(engines)('notification idempotency keys are scoped per sender on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    "admin B guessing admin A's key gets a new notification of their own, never A's private one",
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using alice = connectClient(
        server,
        await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
      );
      await using mallory = connectClient(
        server,
        await server.token({ sub: 'mallory', workspaces: { acme: 'admin' } }),
      );
      const a = await alice.trpc.notifications.send.mutate({
        ...alert('Private to Carol: salary review', 'review-1'),
        userId: 'carol',
      });
      expect(a.created).toBe(true);

      const b = await mallory.trpc.notifications.send.mutate({
        ...alert('Mallory to herself', 'review-1'),
        userId: 'mallory',
      });
      // A different sender's key is a different key: a new notification, nothing of A's comes back.
      expect(b.created).toBe(true);
      expect(b.notification.id).not.toBe(a.notification.id);
      expect(b.notification).toMatchObject({ title: 'Mallory to herself', userId: 'mallory' });
      expect(JSON.stringify(b)).not.toContain('salary');

      // The same sender repeating its key still gets its own first notification back.
      const again = await alice.trpc.notifications.send.mutate({
        ...alert('Private to Carol: salary review', 'review-1'),
        userId: 'carol',
      });
      expect(again).toMatchObject({ created: false, notification: { id: a.notification.id } });
      // A service token with the same name is another sender too (its own namespace).
      await using aliceService = connectClient(server, await server.token({ sub: 'alice', service: true }));
      const asService = await aliceService.trpc.notifications.send.mutate({
        ...alert('From the alice service', 'review-1'),
        userId: 'alice',
      });
      expect(asService.created).toBe(true);
      expect(asService.notification.id).not.toBe(a.notification.id);

      const carol = await server
        .callerFor({ ...admin('carol'), workspaces: { acme: 'member' } })
        .notifications.list({ workspaceId: 'acme' });
      expect(carol.items.map((n) => n.title)).toEqual(['Private to Carol: salary review']);
    },
  );

  it.skipIf(engine.unavailable)(
    "a user who pre-claims an SLA alert's predictable key does not suppress the alert",
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({
        ...store.options,
        config: { ...store.options.config, inbox: { slaMs: 300, slaPollMs: 25 } },
      });
      const { conversation } = await server.caller.inbox.receive({
        workspaceId: 'acme',
        platform: 'facebook',
        externalId: 'thread-1',
        contact: { id: 'c-1', name: 'Dan' },
        body: 'Anyone there?',
      });
      // The SLA clock starts when the conversation is created: its key is `inbox-sla:<id>:<start ms>`.
      const predicted = `inbox-sla:${conversation.id}:${Date.parse(conversation.createdAt)}`;
      await using mallory = connectClient(
        server,
        await server.token({ sub: 'mallory', workspaces: { acme: 'admin' } }),
      );
      const claimed = await mallory.trpc.notifications.send.mutate({
        ...alert('Nothing to see', predicted),
        userId: 'mallory',
      });
      expect(claimed.created).toBe(true);

      const alice = server.callerFor({ ...admin('alice'), workspaces: { acme: 'member' } });
      await waitFor(async () => {
        const page = await alice.notifications.list({ workspaceId: 'acme' });
        expect(page.items.filter((n) => n.type === 'alert')).toHaveLength(1);
      });
      const [slaAlert] = (await alice.notifications.list({ workspaceId: 'acme' })).items;
      expect(slaAlert).toMatchObject({
        type: 'alert',
        userId: null,
        priority: 'high',
        data: { alertType: 'sla', conversationId: conversation.id },
      });
      expect(slaAlert?.id).not.toBe(claimed.notification.id);
    },
  );

  it.skipIf(engine.unavailable)(
    'concurrent sends with one key by one sender (user and system) give one notification and one delivery each',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer(store.options);
      await using bob = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const seen = collect<Tracked>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
      await synced(seen);

      const aliceToken = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
      const tabs = Array.from({ length: 5 }, () => connectClient(server, aliceToken));
      const byAlice = await Promise.all(
        tabs.map((tab) => tab.trpc.notifications.send.mutate({ ...alert('From Alice', 'k'), userId: 'bob' })),
      );
      await Promise.all(tabs.map((tab) => tab.close()));
      const bySystem = await Promise.all(
        Array.from({ length: 5 }, () =>
          server.services.notifications.send('system', { ...alert('From the system', 'k'), userId: 'bob' }),
        ),
      );
      for (const results of [byAlice, bySystem]) {
        expect(new Set(results.map((r) => r.notification.id)).size).toBe(1);
        expect(results.filter((r) => r.created)).toHaveLength(1);
      }
      expect(byAlice[0]?.notification.id).not.toBe(bySystem[0]?.notification.id);
      await waitFor(() => expect(seen.items).toHaveLength(2));
      // Barrier: a later send with another key arrives; none of the ten can still arrive after it.
      await server.services.notifications.send('system', { ...alert('Barrier', 'other'), userId: 'bob' });
      await waitFor(() => expect(seen.items).toHaveLength(3));
      expect(titles(seen.items)).toEqual(['From Alice', 'From the system', 'Barrier']);
    },
  );

  it.skipIf(engine.unavailable)(
    'the migration keeps notifications and read state of an existing store and lifts the workspace-wide key',
    async () => {
      await using store = await engine.setup();
      {
        // A store as the previous release left it: only the migrations it had.
        const old = createStore({
          databaseUrl: store.options.config.databaseUrl,
          dataDir: store.options.config.dataDir,
          sqliteFile: store.options.sqliteFile,
        });
        await old.migrate({
          '0000_streams': streamMigrations['0000_streams']!,
          '0100_notifications': notificationMigrations['0100_notifications']!,
        });
        await sql`insert into pulse_streams (stream_key, seq) values ('notifications:acme', 1)`.execute(
          old.db,
        );
        await sql`insert into pulse_notifications
            (id, workspace_id, seq, user_id, type, title, body, data, priority, idempotency_key, created_at)
          values ('n-old', 'acme', 1, 'bob', 'alert', 'Old one', null,
            '{"alertType":"system","severity":"info","message":"Old one"}', 'normal', 'shared-key',
            '2026-01-01T00:00:00.000Z')`.execute(old.db);
        await sql`insert into pulse_notification_reads (notification_id, user_id, workspace_id, read_at)
          values ('n-old', 'bob', 'acme', '2026-01-02T00:00:00.000Z')`.execute(old.db);
        await old.close();
      }
      await using server = await startTestServer(store.options);
      const bob = server.callerFor({ ...admin('bob'), workspaces: { acme: 'member' } });
      const before = await bob.notifications.list({ workspaceId: 'acme' });
      expect(before.items.map((n) => [n.id, n.readAt])).toEqual([['n-old', '2026-01-02T00:00:00.000Z']]);
      // The old workspace-wide uniqueness is gone: a sender's key no longer collides with it.
      const sent = await server
        .callerFor(admin('alice'))
        .notifications.send({ ...alert('New one', 'shared-key'), userId: 'bob' });
      expect(sent).toMatchObject({ created: true, notification: { eventId: '2', title: 'New one' } });
      const after = await bob.notifications.list({ workspaceId: 'acme' });
      expect(after.items.map((n) => n.title)).toEqual(['New one', 'Old one']);
      expect(await bob.notifications.unreadCount({ workspaceId: 'acme' })).toBe(1);
    },
  );
});
