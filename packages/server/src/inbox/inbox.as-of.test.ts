/**
 * `asOf` of `inbox.conversations` and `inbox.messages` (issue 16): the inbox stream position read
 * in the same snapshot as the page, checked against a writer on another store connection.
 */
import { describe, expect, it } from 'vitest';
import { storeEngines } from '../../test/support/vitest.js';
import type { Principal } from '../auth/auth.schema.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { Hub } from '../infra/hub.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from '../streams/streams.tables.js';
import type { ConversationView, Message, Page } from './inbox.schema.js';
import { InboxService } from './inbox.service.js';
import { inboxMigrations } from './inbox.tables.js';

const engines = await storeEngines();

const bob: Principal = {
  userId: 'bob',
  name: 'Bob',
  workspaces: { acme: 'member' },
  service: false,
  expiresAt: Date.now() + 3_600_000,
};

describe.each(engines)('inbox: asOf is read with the page on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'conversations and messages read while another connection receives: each page is the stream at its asOf',
    { timeout: 60_000 },
    async () => {
      await using where = await engine.setup();
      const open = () => createStore({ ...where.config, sqliteFile: where.sqliteFile });
      const writerStore = open();
      await writerStore.migrate({ ...streamMigrations, ...inboxMigrations });
      const readerStore = open();
      const service = (store: ReturnType<typeof open>) =>
        new InboxService({
          store,
          hub: new Hub(createMemoryBus()),
          slaMs: 3_600_000,
          slaPollMs: 0,
          retention: 500,
        });
      const writer = service(writerStore);
      const reader = service(readerStore);
      /** Every stored message: its conversation and stream id. */
      const sent: Array<{ conversationId: string; id: number; body: string }> = [];
      const conversationPages: Array<Page<ConversationView>> = [];
      const messagePages: Array<Page<Message>> = [];
      try {
        const first = await writer.receive({
          workspaceId: 'acme',
          platform: 'x',
          externalId: 'thread-0',
          contact: { id: 'c0', name: 'C0' },
          body: 'm0',
        });
        const watched = first.conversation.id;
        sent.push({ conversationId: watched, id: Number(first.message.eventId), body: 'm0' });
        let done = false;
        const write = async () => {
          for (let i = 1; i <= 45; i++) {
            const thread = i % 3;
            const result = await writer.receive({
              workspaceId: 'acme',
              platform: 'x',
              externalId: `thread-${thread}`,
              contact: { id: `c${thread}`, name: `C${thread}` },
              body: `m${i}`,
            });
            sent.push({
              conversationId: result.conversation.id,
              id: Number(result.message.eventId),
              body: `m${i}`,
            });
          }
          done = true;
        };
        const read = async () => {
          while (!done) {
            const [conversations, messages] = await Promise.all([
              reader.conversations(bob, { workspaceId: 'acme', limit: 100 }),
              reader.messages(bob, { conversationId: watched, limit: 100 }),
            ]);
            conversationPages.push(conversations);
            messagePages.push(messages);
          }
        };
        await Promise.all([write(), read(), read()]);
        conversationPages.push(await reader.conversations(bob, { workspaceId: 'acme', limit: 100 }));
        messagePages.push(await reader.messages(bob, { conversationId: watched, limit: 100 }));

        const upTo = (asOf: string) => sent.filter((m) => m.id <= Number(asOf));
        expect(
          new Set([...conversationPages, ...messagePages].map((page) => page.asOf)).size,
        ).toBeGreaterThan(5);
        for (const page of messagePages) {
          const expected = upTo(page.asOf)
            .filter((m) => m.conversationId === watched)
            .map((m) => m.body);
          expect({ asOf: page.asOf, bodies: page.items.map((m) => m.body) }).toEqual({
            asOf: page.asOf,
            bodies: expected,
          });
        }
        for (const page of conversationPages) {
          const unread = new Map<string, number>();
          for (const m of upTo(page.asOf))
            unread.set(m.conversationId, (unread.get(m.conversationId) ?? 0) + 1);
          const got = new Map(page.items.map((c) => [c.id, c.unreadCount]));
          expect({ asOf: page.asOf, unread: got }).toEqual({ asOf: page.asOf, unread });
        }
        expect(messagePages.at(-1)?.asOf).toBe(String(Math.max(...sent.map((m) => m.id))));
      } finally {
        await writer.close();
        await reader.close();
        await readerStore.close();
        await writerStore.close();
      }
    },
  );
});
