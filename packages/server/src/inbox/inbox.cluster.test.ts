import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  synced,
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  uniquePrefix,
} from '../../test/support/vitest.js';
import type { InboxEvent } from './inbox.schema.js';

type Tracked = { id: string; data: InboxEvent };
const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe.skipIf(unavailable)('inbox across two nodes (PostgreSQL + Redis)', () => {
  it('concurrent writes on both nodes reach subscribers on either node once, in id order; one live escalation', async () => {
    await using db = await createTestDatabase();
    const config = {
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      redisPrefix: uniquePrefix(),
      inbox: { slaMs: 60_000, slaPollMs: 20 },
    };
    await using n1 = await startTestServer({ config: { ...config, nodeId: 'n1' } });
    await using n2 = await startTestServer({ config: { ...config, nodeId: 'n2' } });
    const token = await n1.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'admin' } });
    await using tab1 = connectClient(n1, token);
    await using tab2 = connectClient(n2, token);
    const seen1 = collect<Tracked>();
    const seen2 = collect<Tracked>();
    tab1.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, seen1);
    tab2.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme' }, seen2);
    await synced(seen1, seen2);

    // Ten messages per node into one conversation (created by whichever node comes first).
    const perNode = 10;
    const base = {
      workspaceId: 'acme',
      platform: 'x',
      externalId: 'dm-1',
      contact: { id: 'u1', name: 'Uma' },
    } as const;
    await Promise.all(
      Array.from({ length: perNode }, (_, i) => [
        n1.caller.inbox.receive({ ...base, body: `n1-${i}`, platformMessageId: `n1-${i}` }),
        n2.caller.inbox.receive({ ...base, body: `n2-${i}`, platformMessageId: `n2-${i}` }),
      ]).flat(),
    );
    const total = 2 * perNode + 1; // one `conversation` (created) event, then every message
    const ids = Array.from({ length: total }, (_, i) => String(i + 1));
    await vi.waitFor(() => expect(seen1.items.length).toBeGreaterThanOrEqual(total), { timeout: 10_000 });
    await vi.waitFor(() => expect(seen2.items.length).toBeGreaterThanOrEqual(total), { timeout: 10_000 });
    // Nothing else is written until the next step, so the first `total` items are all of them; that no
    // copy follows is checked below, once later events (a barrier: the stream is in order) are in.
    expect(seen1.items.slice(0, total).map((e) => e.id)).toEqual(ids);
    expect(seen2.items.slice(0, total).map((e) => e.id)).toEqual(ids);
    expect(seen1.items.filter((e) => e.data.type === 'conversation')).toHaveLength(1);
    const conversationId =
      seen1.items[0]?.data.type === 'conversation' ? seen1.items[0].data.conversationId : '';

    // An escalation claimed by one of the two schedulers reaches both tabs once.
    await tab1.trpc.inbox.setSla.mutate({ workspaceId: 'acme', slaMs: 1 });
    await tab2.trpc.inbox.send.mutate({ conversationId, body: 'Hi Uma', clientMessageId: 'r1' });
    await n1.caller.inbox.receive({ ...base, body: 'still there?' });
    await vi.waitFor(() =>
      expect(seen1.items.filter((e) => e.data.type === 'sla_escalated')).toHaveLength(1),
    );
    await vi.waitFor(() =>
      expect(seen2.items.filter((e) => e.data.type === 'sla_escalated')).toHaveLength(1),
    );
    // Barrier: an assignment committed after the escalation arrived. Each node delivers the stream in
    // id order, so once it is on both tabs a second escalation or any copy would be there before it.
    await tab1.trpc.inbox.update.mutate({ conversationId, assigneeId: 'bob' });
    const barrier = (e: Tracked) => e.data.type === 'conversation' && e.data.change === 'updated';
    await vi.waitFor(() => expect(seen1.items.some(barrier)).toBe(true));
    await vi.waitFor(() => expect(seen2.items.some(barrier)).toBe(true));
    const allIds = Array.from({ length: total + 4 }, (_, i) => String(i + 1));
    expect(seen1.items.map((e) => e.id)).toEqual(allIds);
    expect(seen2.items.map((e) => e.id)).toEqual(allIds);
    expect(seen1.items.filter((e) => e.data.type === 'sla_escalated')).toHaveLength(1);
    const tail = ['message', 'message', 'sla_escalated', 'conversation'];
    expect(seen1.items.map((e) => e.data.type).slice(total)).toEqual(tail);
    expect(seen2.items.map((e) => e.data.type).slice(total)).toEqual(tail);

    // A resume on the other node replays from the store.
    await using tab3 = connectClient(n2, token);
    const resumed = collect<Tracked>();
    tab3.trpc.inbox.onEvent.subscribe({ workspaceId: 'acme', lastEventId: String(total) }, resumed);
    await vi.waitFor(() => expect(resumed.items).toHaveLength(4));
    expect(resumed.items.map((e) => e.id)).toEqual(seen1.items.slice(total).map((e) => e.id));
  });
});
