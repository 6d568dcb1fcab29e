import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
  storeEngines,
} from '../../test/support/vitest.js';
import type { PulseConfigInput } from '../config.js';
import type { InboxEvent } from '../inbox/inbox.schema.js';
import type { Bus } from '../infra/bus/bus.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import type { HubEvent } from '../infra/hub.js';
import type { StreamTables } from './streams.tables.js';
import type { NotificationEvent } from '../notifications/notifications.schema.js';
import { createPulseServices } from '../server.js';

const engines = await storeEngines();
const redisDown = await redisUnavailable();

/** Store engine × bus: nodes share the store and either one in-process memory bus or Redis. */
const matrix = engines.flatMap((engine) => [
  { ...engine, bus: 'memory' as const, unavailable: engine.unavailable },
  ...(engine.name === 'postgres'
    ? [{ ...engine, bus: 'redis' as const, unavailable: engine.unavailable ?? redisDown }]
    : []),
]);

const alert = (title: string) => ({
  workspaceId: 'acme',
  userId: 'bob',
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

const died = () => {
  throw new Error('process died between commit and publish');
};

const waitFor = <T>(check: () => T | Promise<T>) => vi.waitFor(check, { timeout: 5_000, interval: 20 });

describe.each(matrix)('the outbox relay on $name with a $bus bus', (engine) => {
  it.skipIf(engine.unavailable)(
    'events committed by a node that dies before publishing reach live subscribers on another node, with no later write',
    async () => {
      await using where = await engine.setup();
      const shared: { bus?: Bus; config: PulseConfigInput } = {
        config: {
          ...where.config,
          logLevel: 'silent',
          ...(engine.bus === 'redis' ? { redisUrl: REDIS_URL, redisPrefix: uniquePrefix() } : {}),
        },
        ...(engine.bus === 'memory' ? { bus: createMemoryBus() } : {}),
      };
      const sqliteFile = where.sqliteFile;
      // Node 2: a real server with a real client subscribed to both durable domains.
      await using node2 = await startTestServer({
        ...shared,
        sqliteFile,
        config: { ...shared.config, nodeId: 'n2' },
      });
      await using bob = connectClient(
        node2,
        await node2.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const notifications = collect<{ id: string; data: NotificationEvent }>();
      const inbox = collect<{ id: string; data: InboxEvent }>();
      bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, notifications);
      bob.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, inbox);
      await synced(notifications, inbox);

      // Node 1: commits, then "dies" right before publishing (and runs no relay of its own).
      const node1 = await createPulseServices({
        ...shared,
        sqliteFile,
        config: { ...shared.config, nodeId: 'n1' },
        streams: { relayPollMs: 0, faults: { afterCommitBeforePublish: died } },
      });
      const sent = await node1.services.notifications.send('system', alert('Committed, never published'));
      const received = await node1.services.inbox.receive({
        workspaceId: 'acme',
        platform: 'facebook',
        externalId: 'thread-1',
        contact: { id: 'c-1', name: 'Dan' },
        body: 'Hello?',
      });
      await node1.close();

      // Nothing else is written: node 2's relay finds the committed, unpublished events and publishes them.
      await waitFor(() => expect(notifications.items).toHaveLength(1));
      expect(notifications.items[0]).toMatchObject({
        id: sent.notification.eventId,
        data: {
          type: 'notification',
          notification: { id: sent.notification.id, title: 'Committed, never published' },
        },
      });
      await waitFor(() => expect(inbox.items).toHaveLength(2));
      expect(inbox.items.map((item) => [item.id, item.data.type])).toEqual([
        ['1', 'conversation'],
        [received.message.eventId, 'message'],
      ]);
      expect(notifications.errors).toEqual([]);
      expect(inbox.errors).toEqual([]);
      // The watermark moved past them and the lease was let go (just after the last publish).
      await waitFor(async () => {
        const streams = await node2.services.store.db
          .withTables<StreamTables>()
          .selectFrom('pulse_streams')
          .select(['stream_key', 'seq', 'published_seq', 'relay_owner'])
          .orderBy('stream_key')
          .execute();
        expect(
          streams.map((s) => [s.stream_key, Number(s.seq), Number(s.published_seq), s.relay_owner]),
        ).toEqual([
          ['inbox:acme', 2, 2, null],
          ['notifications:acme', 1, 1, null],
        ]);
      });
    },
  );

  it.skipIf(engine.unavailable)(
    'the relay holds no lock while it publishes: another node writes and returns meanwhile, then both go out in order',
    async () => {
      await using where = await engine.setup();
      const redis = engine.bus === 'redis' ? { redisUrl: REDIS_URL, redisPrefix: uniquePrefix() } : {};
      const config = { ...where.config, ...redis, logLevel: 'silent' as const };
      const sqliteFile = where.sqliteFile;
      // Node 1's bus stalls every publish until released (a slow bus or a slow network).
      const inner = createMemoryBus();
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const stalled: Bus = {
        ...inner,
        publish: async (topic, message) => gate.then(() => inner.publish(topic, message)),
      };
      // NOTE: no node polls here, and node 1's lease outlasts any slow machine: only node 1 may publish.
      const observer = await createPulseServices({
        sqliteFile,
        ...(engine.bus === 'memory' ? { bus: inner } : {}),
        config: { ...config, nodeId: 'observer' },
        streams: { relayPollMs: 0 },
      });
      const seen: HubEvent[] = [];
      const attachment = observer.services.hub.attach('notifications:acme', {
        deliver: (event) => seen.push(event),
      });
      await attachment.ready;
      const node1 = await createPulseServices({
        sqliteFile,
        ...(engine.bus === 'memory' ? { bus: stalled } : {}),
        config: { ...config, nodeId: 'n1' },
        streams: { relayPollMs: 0, relayLeaseMs: 600_000 },
      });
      const node2 = await createPulseServices({
        sqliteFile,
        ...(engine.bus === 'memory' ? { bus: inner } : {}),
        config: { ...config, nodeId: 'n2' },
        streams: { relayPollMs: 0 },
      });
      try {
        // With Redis, node 1 stalls inside its relay instead: its hub's publish waits on the gate.
        if (engine.bus === 'redis') {
          const hub = node1.services.hub;
          const publish = hub.publish.bind(hub);
          hub.publish = (...args) => gate.then(() => publish(...args));
        }
        const first = node1.services.notifications.send('system', alert('first'));
        await waitFor(async () => {
          const row = await node2.services.store.db
            .withTables<StreamTables>()
            .selectFrom('pulse_streams')
            .select('relay_owner')
            .where('stream_key', '=', 'notifications:acme')
            .executeTakeFirst();
          expect(row?.relay_owner).toMatch(/^n1:/);
        });
        // Node 1 is mid-publish. Node 2 writes to the same stream and its call returns.
        const second = await node2.services.notifications.send('system', alert('second'));
        expect(second.notification.eventId).toBe('2');
        expect(seen).toEqual([]);
        release();
        await first;
        // Node 1 saw the commit that landed while it held the stream and published it too, in order.
        await waitFor(() => expect(seen.map((event) => event.id)).toEqual(['1', '2']));
      } finally {
        release();
        attachment.detach();
        await node1.close();
        await node2.close();
        await observer.close();
      }
    },
  );
});

describe.each(engines)('each durable event is serialised once on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'the stored JSON is what the hub hands to sockets (no second JSON.stringify of the event)',
    async () => {
      await using where = await engine.setup();
      await using server = await startTestServer({ sqliteFile: where.sqliteFile, config: where.config });
      const seen: HubEvent[] = [];
      const attachment = server.services.hub.attach('notifications:acme', {
        deliver: (event) => seen.push(event),
      });
      await attachment.ready;
      const stringify = vi.spyOn(JSON, 'stringify');
      try {
        await server.services.notifications.send('system', alert('once'));
        await waitFor(() => expect(seen).toHaveLength(1));
        const json = seen[0]?.json();
        const ofTheEvent = stringify.mock.calls.filter(
          ([value]) => (value as { type?: unknown } | null)?.type === 'notification',
        );
        expect(ofTheEvent).toHaveLength(1);
        const stored = await server.services.store.db
          .withTables<{ pulse_notification_events: { workspace_id: string; payload: string } }>()
          .selectFrom('pulse_notification_events')
          .select('payload')
          .executeTakeFirstOrThrow();
        expect(json).toBe(stored.payload);
      } finally {
        stringify.mockRestore();
        attachment.detach();
      }
    },
  );
});
