import { TRPCError } from '@trpc/server';
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { storeEngines } from '../../test/support/vitest.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { Hub } from '../infra/hub.js';
import { createStore } from '../infra/store/db.js';
import { streamMigrations } from './streams.tables.js';
import { StreamKernel } from './stream-kernel.js';

const engines = await storeEngines();

type NoteEvent = { type: 'note'; workspaceId: string; at: string; key: string };
class Duplicate extends Error {}

async function setupKernel(engine: (typeof engines)[number]) {
  const where = await engine.setup();
  const store = createStore({ ...where.config, sqliteFile: where.sqliteFile });
  await store.migrate(streamMigrations);
  await sql`create table if not exists gc_notes (key text primary key, seq bigint not null)`.execute(
    store.db,
  );
  const hub = new Hub(createMemoryBus());
  const groups: number[] = [];
  const kernel = new StreamKernel({ store, hub, relayPollMs: 0, groupCommit: true });
  const notes = kernel.define<NoteEvent>({ name: 'notes', retention: 1_000 });
  const controller = new AbortController();
  const live: Array<{ id: string; key: string }> = [];
  let synced = false;
  const reading = (async () => {
    for await (const item of notes.subscribe({ workspaceId: 'acme', signal: controller.signal })) {
      const [id, data] = item as unknown as [string, NoteEvent | { type: 'sync' }];
      if (data.type === 'sync') synced = true;
      if (data.type === 'note') live.push({ id, key: (data as NoteEvent).key });
    }
  })().catch(() => {});
  // The subscriber has its sync (head 0) before any write.
  // NOTE: its replay is a shared read starting on a later turn: wait for the sync itself.
  await vi.waitFor(() => expect(synced).toBe(true));
  expect(await notes.head('acme')).toBe('0');
  /** One write: the domain row (unique key: the idempotency guard) and its event, in one transaction. */
  const send = (key: string, fail?: Error) =>
    kernel.transaction(store.db, async (trx) => {
      const seq = await notes.nextId(trx, 'acme');
      const inserted = await sql<{ key: string }>`insert into gc_notes (key, seq) values (${key}, ${seq})
        on conflict (key) do nothing returning key`.execute(trx);
      if (inserted.rows.length === 0) throw new Duplicate(key);
      await notes.append(
        trx,
        'acme',
        { type: 'note', workspaceId: 'acme', at: new Date().toISOString(), key },
        { seq },
      );
      if (fail) throw fail;
      return seq;
    });
  const rows = async () =>
    (
      await sql<{ key: string; seq: number | string }>`select key, seq from gc_notes order by seq`.execute(
        store.db,
      )
    ).rows.map((r) => ({ key: r.key, seq: Number(r.seq) }));
  return {
    send,
    rows,
    live,
    notes,
    groups,
    async [Symbol.asyncDispose]() {
      controller.abort();
      await reading;
      await kernel.close();
      await store.close();
      await where[Symbol.asyncDispose]();
    },
  };
}

describe.each(engines)('group commit on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    '50 concurrent writes: all stored, ids gap-free in commit order, each delivered once live',
    async () => {
      await using k = await setupKernel(engine);
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
      const seqs = await Promise.all(keys.map((key) => k.send(key)));
      expect([...seqs].sort((a, b) => a - b)).toEqual(keys.map((_, i) => i + 1));
      const stored = await k.rows();
      expect(stored.map((r) => r.seq)).toEqual(keys.map((_, i) => i + 1));
      expect(new Set(stored.map((r) => r.key))).toEqual(new Set(keys));
      expect(await k.notes.head('acme')).toBe('50');
      await vi.waitFor(() => expect(k.live.length).toBe(50), { timeout: 10_000 });
      expect(k.live.map((e) => Number(e.id))).toEqual(keys.map((_, i) => i + 1));
      // Delivered id i carries the key stored under seq i.
      expect(k.live.map((e) => e.key)).toEqual(stored.map((r) => r.key));
    },
  );

  it.skipIf(engine.unavailable)(
    'an idempotency key is stored once: duplicates inside one group and retries in a later group are detected',
    async () => {
      await using k = await setupKernel(engine);
      const first = await Promise.allSettled([
        ...Array.from({ length: 10 }, () => k.send('same')),
        ...Array.from({ length: 10 }, (_, i) => k.send(`other${i}`)),
      ]);
      const ok = first.filter((r) => r.status === 'fulfilled');
      const dup = first.filter((r) => r.status === 'rejected');
      expect(ok).toHaveLength(11);
      expect(dup).toHaveLength(9);
      for (const r of dup) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(Duplicate);
      // A retry after commit (its own group, or joined with fresh writes) is a duplicate too.
      const retry = await Promise.allSettled([k.send('same'), k.send('fresh'), k.send('other3')]);
      expect(retry[0]).toMatchObject({ status: 'rejected', reason: expect.any(Duplicate) });
      expect(retry[1]).toMatchObject({ status: 'fulfilled', value: 12 });
      expect(retry[2]).toMatchObject({ status: 'rejected', reason: expect.any(Duplicate) });
      const stored = await k.rows();
      expect(stored.filter((r) => r.key === 'same')).toHaveLength(1);
      expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      await vi.waitFor(() => expect(k.live.length).toBe(12), { timeout: 10_000 });
      expect(k.live.filter((e) => e.key === 'same')).toHaveLength(1);
    },
  );

  it.skipIf(engine.unavailable)('one failing write in a group fails only itself and uses no id', async () => {
    await using k = await setupKernel(engine);
    const bad = new TRPCError({ code: 'BAD_REQUEST', message: 'note rejected' });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => k.send(`n${i}`, i === 7 ? bad : undefined)),
    );
    results.forEach((r, i) => {
      if (i === 7) {
        expect(r.status).toBe('rejected');
        const reason = (r as PromiseRejectedResult).reason as TRPCError;
        expect(reason).toBeInstanceOf(TRPCError);
        expect(reason.code).toBe('BAD_REQUEST');
        expect(reason.message).toBe('note rejected');
      } else expect(r.status).toBe('fulfilled');
    });
    const stored = await k.rows();
    expect(stored.map((r) => r.key)).not.toContain('n7');
    expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(await k.notes.head('acme')).toBe('19');
    await vi.waitFor(() => expect(k.live.length).toBe(19), { timeout: 10_000 });
    expect(k.live.map((e) => e.key)).toEqual(stored.map((r) => r.key));
  });
});
