import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../src/auth/auth.schema.js';
import { channelMigrations } from '../src/channels/channels.tables.js';
import { dashboardValueKey } from '../src/dashboard/dashboard.schema.js';
import { dashboardMigrations } from '../src/dashboard/dashboard.tables.js';
import { inboxMigrations } from '../src/inbox/inbox.tables.js';
import { createStore } from '../src/infra/store/db.js';
import { notificationMigrations } from '../src/notifications/notifications.tables.js';
import { createPulseServices } from '../src/server.js';
import { statsMigrations } from '../src/stats/stats.tables.js';
import { streamMigrations } from '../src/streams/streams.tables.js';
import { storeEngines } from './support/vitest.js';

const engines = await storeEngines();

/** Every migration a node runs (as `createPulseServices` does). */
const all = {
  ...statsMigrations,
  ...streamMigrations,
  ...notificationMigrations,
  ...dashboardMigrations,
  ...inboxMigrations,
  ...channelMigrations,
};
/** The migrations of the release before the one table prefix. */
const previousRelease = [
  '0000_streams',
  '0100_notifications',
  '0200_dashboard',
  '0300_inbox',
  '0301_inbox_alerts',
  '0900_node_stats',
  '1000_notification_sender_keys',
  '1010_stream_outbox',
  '1100_notification_states',
  '1200_dashboard_history',
  '1600_channel_publishes',
];
const renames = ['1700_dashboard_pulse_prefix', '1710_inbox_pulse_prefix'];
const oldTables = [
  'dashboard_values',
  'dashboard_points',
  'dashboard_buckets',
  'dashboard_rollup',
  'inbox_conversations',
  'inbox_messages',
  'inbox_reads',
  'inbox_events',
  'inbox_settings',
];

const admin: Principal = {
  userId: 'alice',
  name: 'Alice',
  workspaces: { acme: 'admin' },
  service: false,
  expiresAt: Number.POSITIVE_INFINITY,
};

describe('the pulse_ table prefix migrations', () => {
  it('exist and sort after every migration of the previous release (the migrator runs names in order)', () => {
    for (const name of [...previousRelease, ...renames]) expect(all[name], name).toBeDefined();
    const last = [...previousRelease].sort().at(-1) as string;
    for (const name of renames) expect(name > last, `${name} after ${last}`).toBe(true);
  });
});

describe.each(engines)('upgrading a store to the pulse_ table prefix on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'rows written through the old table names are read and extended through the services after the rename',
    async () => {
      await using where = await engine.setup();
      const store = createStore({ ...where.config, sqliteFile: where.sqliteFile });
      try {
        // A store as the previous release left it, with rows written through the old names.
        await store.migrate(Object.fromEntries(previousRelease.map((name) => [name, all[name]!])));
        const at = new Date(Date.now() - 60_000).toISOString();
        const update = {
          kind: 'metric',
          platform: 'instagram',
          accountId: 'acc-1',
          metric: 'reach',
          value: 42,
        } as const;
        const key = dashboardValueKey(update);
        const event = { ...update, type: 'update', workspaceId: 'acme', at, key };
        const json = JSON.stringify(event);
        await sql`insert into dashboard_values (workspace_id, value_key, kind, platform, at, event)
          values ('acme', ${key}, 'metric', 'instagram', ${at}, ${json})`.execute(store.db);
        await sql`insert into dashboard_points
            (workspace_id, value_key, kind, platform, account_id, at_ms, created_ms, event)
          values ('acme', ${key}, 'metric', 'instagram', 'acc-1', ${Date.parse(at)}, ${Date.parse(at)}, ${json})`.execute(
          store.db,
        );
        await sql`insert into pulse_streams (stream_key, seq, published_seq) values ('inbox:acme', 2, 2)`.execute(
          store.db,
        );
        await sql`insert into inbox_conversations
            (id, workspace_id, platform, external_id, contact, status, assignee_id, created_at,
             last_message_at, sla_started_at, sla_due_at, escalated_at, alerted_at)
          values ('cv_old', 'acme', 'instagram', 'thread-1', '{"id":"c-1","name":"Carla"}', 'open', null,
            ${at}, ${at}, null, null, null, null)`.execute(store.db);
        await sql`insert into inbox_messages
            (id, workspace_id, conversation_id, seq, direction, author_id, author_name, body, at,
             platform_message_id, client_message_id)
          values ('m_old', 'acme', 'cv_old', 2, 'inbound', null, 'Carla', 'Written before the upgrade',
            ${at}, 'pm-1', null)`.execute(store.db);

        // The new release starts on that store: every migration, then the services.
        const node = await createPulseServices({ store, config: { logLevel: 'silent' } });
        try {
          const { dashboard, inbox } = node.services;
          expect((await dashboard.snapshot({ workspaceId: 'acme' })).updates).toEqual([event]);
          const published = await dashboard.publish({ ...update, value: 43, workspaceId: 'acme' });
          expect(published.applied).toBe(true);
          const history = await dashboard.readHistory({
            workspaceId: 'acme',
            kind: 'metric',
            from: new Date(Date.parse(at) - 1_000).toISOString(),
            bucket: 'raw',
          });
          expect(history.series.map((s) => s.points.map((p) => p.value))).toEqual([[42, 43]]);

          const conversations = await inbox.conversations(admin, { workspaceId: 'acme' });
          expect(conversations.items.map((c) => c.id)).toEqual(['cv_old']);
          const incoming = {
            workspaceId: 'acme',
            platform: 'instagram',
            externalId: 'thread-1',
            contact: { id: 'c-1', name: 'Carla' },
          } as const;
          // The old message still deduplicates; a new one joins the old conversation with the next id.
          const again = await inbox.receive({ ...incoming, body: 'Retried', platformMessageId: 'pm-1' });
          expect(again).toMatchObject({ created: false, message: { id: 'm_old', eventId: '2' } });
          const next = await inbox.receive({
            ...incoming,
            body: 'After the upgrade',
            platformMessageId: 'pm-2',
          });
          expect(next).toMatchObject({
            created: true,
            conversation: { id: 'cv_old' },
            message: { eventId: '3' },
          });
          const messages = await inbox.messages(admin, { conversationId: 'cv_old' });
          expect(messages.items.map((m) => [m.body, m.eventId])).toEqual([
            ['Written before the upgrade', '2'],
            ['After the upgrade', '3'],
          ]);
        } finally {
          await node.close();
        }

        if (store.dialect === 'postgres') {
          // The tables, their indexes / key constraints and sequences all carry the new prefix.
          const leftovers = await sql<{ relname: string }>`
            select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = current_schema()
              and (c.relname like 'dashboard\\_%' or c.relname like 'inbox\\_%')`.execute(store.db);
          expect(leftovers.rows).toEqual([]);
          const constraints = await sql<{ conname: string }>`
            select conname from pg_constraint
            where conname like 'dashboard\\_%' or conname like 'inbox\\_%'`.execute(store.db);
          expect(constraints.rows).toEqual([]);
          const renamed = await sql<{ relname: string }>`
            select relname from pg_class where relname in
              ('pulse_dashboard_points_id_seq', 'pulse_inbox_conversations_external', 'pulse_inbox_messages_order')
            order by relname`.execute(store.db);
          expect(renamed.rows.map((r) => r.relname)).toEqual([
            'pulse_dashboard_points_id_seq',
            'pulse_inbox_conversations_external',
            'pulse_inbox_messages_order',
          ]);
        } else {
          // SQLite renames the tables; it cannot rename an index, so the indexes keep their old names.
          const objects = await sql<{ type: string; name: string; tbl_name: string }>`
            select type, name, tbl_name from sqlite_master
            where type in ('table', 'index') and name not like 'sqlite_%'`.execute(store.db);
          const tables = objects.rows.filter((o) => o.type === 'table').map((o) => o.name);
          for (const old of oldTables) {
            expect(tables).not.toContain(old);
            expect(tables).toContain(`pulse_${old}`);
          }
          expect(objects.rows).toContainEqual({
            type: 'index',
            name: 'inbox_messages_order',
            tbl_name: 'pulse_inbox_messages',
          });
        }
      } finally {
        await store.close();
      }
    },
  );
});
