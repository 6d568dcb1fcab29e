/**
 * `asOf` of `list` and `counts` (issue 16): the stream position an answer was read at, read in the
 * same snapshot as its rows, so a client can re-apply exactly the live events past it. Checked
 * against a writer on another store connection (another node) that sends and marks read while
 * the answers are read: every answer holds exactly what the stream had at its `asOf`.
 */
import { describe, expect, it } from 'vitest';
import { storeEngines } from '../../test/support/vitest.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { Hub } from '../infra/hub.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from '../streams/streams.tables.js';
import type { NotificationCountsAnswer, NotificationPage } from './notifications.schema.js';
import { NotificationService } from './notifications.service.js';
import { notificationMigrations } from './notifications.tables.js';

const engines = await storeEngines();

/** One write of the writer, at its stream id. */
type Write =
  | { id: number; kind: 'send'; notificationId: string }
  | { id: number; kind: 'read'; notificationId: string };

describe.each(engines)('notifications: asOf is read with the rows on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'list and counts read while another connection sends and marks read: each answer is the stream at its asOf',
    { timeout: 60_000 },
    async () => {
      await using where = await engine.setup();
      const open = () => createStore({ ...where.config, sqliteFile: where.sqliteFile });
      const writerStore = open();
      await writerStore.migrate({ ...streamMigrations, ...notificationMigrations });
      const readerStore = open();
      const writer = new NotificationService({
        store: writerStore,
        hub: new Hub(createMemoryBus()),
        retention: 500,
      });
      const reader = new NotificationService({
        store: readerStore,
        hub: new Hub(createMemoryBus()),
        retention: 500,
      });
      const writes: Write[] = [];
      const pages: NotificationPage[] = [];
      const counts: NotificationCountsAnswer[] = [];
      try {
        // Another workspace's stream moves too: its ids must not leak into acme's asOf.
        await writer.send('system', {
          workspaceId: 'globex',
          userId: 'bob',
          type: 'mention',
          title: 'elsewhere',
          data: { platform: 'x', author: '@a', text: 'x' },
        });
        let done = false;
        const write = async () => {
          const unread: string[] = [];
          for (let i = 0; i < 60; i++) {
            const { notification } = await writer.send('system', {
              workspaceId: 'acme',
              // Every fourth to everyone, the rest to bob; one to someone else (not bob's).
              ...(i % 4 === 0 ? {} : { userId: i === 5 ? 'carol' : 'bob' }),
              type: 'mention',
              title: `n${i}`,
              data: { platform: 'x', author: '@fan', text: `t${i}` },
            });
            if (i !== 5) {
              writes.push({
                id: Number(notification.eventId),
                kind: 'send',
                notificationId: notification.id,
              });
              unread.push(notification.id);
            }
            if (i % 3 === 2) {
              const target = unread.splice(Math.floor(unread.length / 2), 1)[0] as string;
              const result = await writer.changeState('bob', 'read', { workspaceId: 'acme', ids: [target] });
              expect(result.ids).toEqual([target]);
              writes.push({ id: Number(result.asOf), kind: 'read', notificationId: target });
            }
          }
          done = true;
        };
        const read = async () => {
          while (!done) {
            const [page, count] = await Promise.all([
              reader.list('bob', { workspaceId: 'acme', limit: 100 }),
              reader.counts('bob', 'acme'),
            ]);
            pages.push(page);
            counts.push(count);
          }
        };
        await Promise.all([write(), read(), read()]);
        // One answer after the writer: the whole stream.
        pages.push(await reader.list('bob', { workspaceId: 'acme', limit: 100 }));
        counts.push(await reader.counts('bob', 'acme'));

        /** What bob's stream holds at `asOf`: notifications newest first, and which are read. */
        const at = (asOf: number) => {
          const sent = writes.filter((w) => w.kind === 'send' && w.id <= asOf).map((w) => w.notificationId);
          const read = new Set(
            writes.filter((w) => w.kind === 'read' && w.id <= asOf).map((w) => w.notificationId),
          );
          return { ids: sent.reverse(), read, unread: sent.filter((id) => !read.has(id)).length };
        };
        // The reads ran beside the writer (the check means something only if they saw it move).
        const positions = new Set([...pages, ...counts].map((answer) => answer.asOf));
        expect(positions.size).toBeGreaterThan(5);
        for (const page of pages) {
          const expected = at(Number(page.asOf));
          expect({ asOf: page.asOf, ids: page.items.map((n) => n.id) }).toEqual({
            asOf: page.asOf,
            ids: expected.ids,
          });
          for (const n of page.items) expect(Boolean(n.readAt)).toBe(expected.read.has(n.id));
          // The newest item is at or below asOf; nothing is past it.
          for (const n of page.items) expect(Number(n.eventId)).toBeLessThanOrEqual(Number(page.asOf));
        }
        for (const count of counts) {
          const expected = at(Number(count.asOf));
          expect(count).toEqual({ asOf: count.asOf, unseen: expected.unread, unread: expected.unread });
        }
        const last = Math.max(...writes.map((w) => w.id));
        expect(pages.at(-1)?.asOf).toBe(String(last));
        expect(counts.at(-1)?.asOf).toBe(String(last));
      } finally {
        await writer.close();
        await reader.close();
        await readerStore.close();
        await writerStore.close();
      }
    },
  );
});
