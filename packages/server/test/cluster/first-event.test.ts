import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createMemoryBus } from '../../src/infra/bus/memory-bus.js';
import { Hub, type HubEvent, type HubSink } from '../../src/infra/hub.js';
import { createStore } from '../../src/infra/store/db.js';
import { streamMigrations } from '../../src/streams/streams.tables.js';
import { StreamKernel } from '../../src/streams/stream-kernel.js';
import {
  streamEventBase,
  streamResetEventSchema,
  streamSyncEventSchema,
} from '../../src/streams/stream.schema.js';
import { storeEngines } from '../support/vitest.js';

function recordingSink() {
  const ids: Array<string | undefined> = [];
  let resyncs = 0;
  const sink: HubSink = {
    deliver: (event: HubEvent) => {
      ids.push(event.id);
    },
    resync: () => {
      resyncs++;
    },
  };
  return { sink, ids, resyncs: () => resyncs };
}

describe('the first durable event a node sees on a topic (issue 18, item 6)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is delivered at once, with no reorder timer, when the subscriber told the hub the head', async () => {
    const bus = createMemoryBus();
    const hub = new Hub(bus);
    const rec = recordingSink();
    const attachment = hub.attach('notifications:acme', rec.sink);
    await attachment.ready;
    attachment.observeHead('5');
    // The memory bus fans out synchronously: whatever the hub does not hold is delivered by now.
    await bus.publish('notifications:acme', { id: '6', data: {} });
    expect(rec.ids).toEqual(['6']);
    expect(vi.getTimerCount()).toBe(0);
    // Still ordered after it: a real gap waits (a timer is armed), the missing id drains both.
    await bus.publish('notifications:acme', { id: '8', data: {} });
    expect(rec.ids).toEqual(['6']);
    expect(vi.getTimerCount()).toBe(1);
    await bus.publish('notifications:acme', { id: '7', data: {} });
    expect(rec.ids).toEqual(['6', '7', '8']);
    expect(vi.getTimerCount()).toBe(0);
    expect(rec.resyncs()).toBe(0);
    await hub.close();
  });

  it('without a head the first event still waits one window (the old rule), then goes out', async () => {
    const bus = createMemoryBus();
    const hub = new Hub(bus);
    const rec = recordingSink();
    await hub.attach('notifications:acme', rec.sink).ready;
    await bus.publish('notifications:acme', { id: '6', data: {} });
    expect(rec.ids).toEqual([]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(150);
    expect(rec.ids).toEqual(['6']);
    await hub.close();
  });

  it('events held before the head arrives pass through (at or below it) or drain in order (after it)', async () => {
    const bus = createMemoryBus();
    const hub = new Hub(bus);
    const rec = recordingSink();
    const attachment = hub.attach('inbox:acme', rec.sink);
    await attachment.ready;
    // Published while the subscriber read the store: 5 (in its replay) and 6, 7 (after its head).
    await bus.publish('inbox:acme', { id: '7', data: {} });
    await bus.publish('inbox:acme', { id: '5', data: {} });
    await bus.publish('inbox:acme', { id: '6', data: {} });
    expect(rec.ids).toEqual([]);
    attachment.observeHead('5');
    expect(rec.ids).toEqual(['5', '6', '7']);
    expect(vi.getTimerCount()).toBe(0);
    await hub.close();
  });

  it('a head is not taken while a second sink is attaching (it could be newer than that one replays)', async () => {
    const bus = createMemoryBus();
    const hub = new Hub(bus);
    const a = recordingSink();
    const b = recordingSink();
    const first = hub.attach('notifications:acme', a.sink);
    hub.attach('notifications:acme', b.sink);
    await first.ready;
    expect(hub.observeHead('notifications:acme', a.sink, '5')).toBe(false);
    await bus.publish('notifications:acme', { id: '6', data: {} });
    expect(a.ids).toEqual([]);
    expect(vi.getTimerCount()).toBe(1);
    await hub.close();
  });
});

// A throwaway durable domain (the kernel alone), to check the head comes from a real subscription.
const todoEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('added'), ...streamEventBase, listId: z.string() }),
  streamSyncEventSchema,
  streamResetEventSchema,
]);
type TodoEvent = z.infer<typeof todoEventSchema>;
const added = (listId: string): TodoEvent => ({
  type: 'added',
  workspaceId: 'acme',
  at: new Date().toISOString(),
  listId,
});

const engines = await storeEngines();

describe.each(engines)('a durable subscription on $name tells the hub its stream head', (engine) => {
  it.skipIf(engine.unavailable)(
    'a filtered subscriber resuming behind the head gets the next event without the reorder window',
    async () => {
      await using where = await engine.setup();
      const store = createStore({ ...where.config, sqliteFile: where.sqliteFile });
      await store.migrate(streamMigrations);
      const bus = createMemoryBus();
      // NOTE: a window of an hour: had the hub held the first event, it would never arrive in this test.
      const hub = new Hub(bus, { reorderWindowMs: 3_600_000 });
      const kernel = new StreamKernel({ store, hub });
      const todos = kernel.define<TodoEvent>({
        name: 'todos',
        retention: 100,
        recipientOf: (e) => ('listId' in e ? e.listId : null),
      });
      const controller = new AbortController();
      try {
        // 1 and 3 are for groceries, 2 for chores: nobody listens yet.
        for (const list of ['groceries', 'chores', 'chores']) {
          await kernel.transaction(store.db, (trx) => todos.append(trx, 'acme', added(list)));
        }
        const ids: string[] = [];
        const stream = todos.subscribe({
          workspaceId: 'acme',
          lastEventId: '0',
          filter: { recipient: 'groceries' },
          signal: controller.signal,
        });
        const done = (async () => {
          for await (const item of stream) ids.push((item as unknown as [string])[0]);
        })().catch(() => {});
        // Its replay ends at 1 (2 and 3 are not its), but the head it read is 3.
        await vi.waitFor(() => expect(ids).toEqual(['1']), { timeout: 5_000, interval: 5 });
        await kernel.transaction(store.db, (trx) => todos.append(trx, 'acme', added('groceries')));
        await vi.waitFor(() => expect(ids).toEqual(['1', '4']), { timeout: 5_000, interval: 5 });
        controller.abort();
        await done;
      } finally {
        controller.abort();
        await hub.close();
        await kernel.close?.();
        await store.close();
      }
    },
  );
});
