import { TRPCError } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { storeEngines } from '../../test/support/vitest.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { Hub } from '../infra/hub.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from './streams.tables.js';
import { StreamKernel } from './stream-kernel.js';
import { streamEventBase, streamResetEventSchema, streamSyncEventSchema } from './stream.schema.js';

const engines = await storeEngines();

// A throwaway durable domain: nothing but its event schema and its filter (recipientOf).
const todoEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('added'), ...streamEventBase, listId: z.string(), text: z.string() }),
  z.object({ type: z.literal('done'), ...streamEventBase, listId: z.string(), text: z.string() }),
  streamSyncEventSchema,
  streamResetEventSchema,
]);
type TodoEvent = z.infer<typeof todoEventSchema>;
type Tracked = { id: string; data: TodoEvent };

const added = (listId: string, text: string): TodoEvent => ({
  type: 'added',
  workspaceId: 'acme',
  at: new Date().toISOString(),
  listId,
  text,
});

/** Reads a subscription (a plain async iterable) into an array until `count` items arrived. */
function reader(stream: AsyncIterable<unknown>) {
  const items: Tracked[] = [];
  const errors: unknown[] = [];
  const done = (async () => {
    try {
      // A tracked envelope is `[id, data, symbol]`.
      for await (const item of stream) {
        const [id, data] = item as [string, TodoEvent];
        items.push({ id, data });
      }
    } catch (error) {
      errors.push(error);
    }
  })();
  return { items, errors, done };
}

async function waitUntil(check: () => boolean): Promise<void> {
  const { vi } = await import('vitest');
  await vi.waitFor(() => expect(check()).toBe(true), { timeout: 5_000, interval: 10 });
}

describe.each(engines)('a durable stream defined with the kernel alone on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'sync at the head, live events in id order per filter, resume, reset past retention, ahead is BAD_REQUEST',
    async () => {
      await using where = await engine.setup();
      const store = createStore({ ...where.config, sqliteFile: where.sqliteFile });
      await store.migrate(streamMigrations);
      const bus = createMemoryBus();
      const hub = new Hub(bus);
      const kernel = new StreamKernel({ store, hub });
      const todos = kernel.define<TodoEvent>({
        name: 'todos',
        retention: 3,
        recipientOf: (event) => ('listId' in event ? event.listId : null),
      });
      const controller = new AbortController();
      try {
        // A subscriber without a resume point gets the head first, then live events of its list.
        const groceries = reader(
          todos.subscribe({
            workspaceId: 'acme',
            filter: { recipient: 'groceries' },
            signal: controller.signal,
          }),
        );
        const everything = reader(todos.subscribe({ workspaceId: 'acme', signal: controller.signal }));
        await waitUntil(() => groceries.items.length === 1 && everything.items.length === 1);
        expect(groceries.items[0]).toMatchObject({ id: '0', data: { type: 'sync', headId: '0' } });

        await kernel.transaction(store.db, async (trx) => {
          await todos.append(trx, 'acme', added('groceries', 'milk'));
          await todos.append(trx, 'acme', added('chores', 'dishes'));
        });
        await kernel.transaction(store.db, (trx) => todos.append(trx, 'acme', added('groceries', 'eggs')));
        // A rolled-back transaction uses no id and publishes nothing.
        await expect(
          kernel.transaction(store.db, async (trx) => {
            await todos.append(trx, 'acme', added('groceries', 'never'));
            throw new Error('changed my mind');
          }),
        ).rejects.toThrow('changed my mind');
        await kernel.transaction(store.db, (trx) =>
          todos.append(trx, 'acme', {
            type: 'done',
            workspaceId: 'acme',
            at: new Date().toISOString(),
            listId: 'groceries',
            text: 'milk',
          }),
        );

        await waitUntil(() => everything.items.length === 5 && groceries.items.length === 4);
        expect(everything.items.map((item) => item.id)).toEqual(['0', '1', '2', '3', '4']);
        expect(groceries.items.map((item) => [item.id, item.data.type])).toEqual([
          ['0', 'sync'],
          ['1', 'added'],
          ['3', 'added'],
          ['4', 'done'],
        ]);
        // Every event is one of the domain's schema (the kernel's own sync/reset included).
        for (const item of everything.items) expect(todoEventSchema.safeParse(item.data).success).toBe(true);
        expect(await todos.head('acme')).toBe('4');

        // Resume within the retention window: exactly the missed events the filter lets through.
        expect((await todos.replay('acme', '2', { recipient: 'groceries' })).map((i) => i.id)).toEqual([
          '3',
          '4',
        ]);
        expect(await todos.replay('acme', '4')).toEqual([]);
        // Past it (3 kept: 2..4): a reset carrying the head.
        expect(await todos.replay('acme', '0')).toEqual([
          { id: '4', data: { type: 'reset', workspaceId: 'acme', at: expect.any(String), headId: '4' } },
        ]);
        const ahead = await todos.replay('acme', '9').catch((error: unknown) => error);
        expect(ahead).toBeInstanceOf(TRPCError);
        expect(ahead).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('ahead') });
        expect(() => todos.subscribe({ workspaceId: 'acme', lastEventId: 'x' })).toThrow(
          expect.objectContaining({ code: 'BAD_REQUEST' }),
        );
        // Another workspace is another stream.
        expect(await todos.head('globex')).toBe('0');
      } finally {
        controller.abort();
        await kernel.close();
        await hub.close();
        await store.close();
      }
    },
  );
});

describe('stream definitions', () => {
  it('refuses a second definition of one name and names with a colon', async () => {
    const store = createStore({ sqliteFile: ':memory:' });
    const hub = new Hub(createMemoryBus());
    const kernel = new StreamKernel({ store, hub, relayPollMs: 0 });
    try {
      kernel.define({ name: 'todos', retention: 10 });
      expect(() => kernel.define({ name: 'todos', retention: 10 })).toThrow('Stream todos is defined twice');
      expect(() => kernel.define({ name: 'a:b', retention: 10 })).toThrow("must not contain ':'");
    } finally {
      await kernel.close();
      await store.close();
    }
  });
});
