import { setMaxListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { type StoreEngine, sleep, startTestServer, storeEngines } from '../../test/support/vitest.js';
import type { DashboardEvent } from './dashboard.schema.js';

const acme = { workspaceId: 'acme' };
const update = (count: number) => ({
  ...acme,
  kind: 'followers' as const,
  platform: 'instagram' as const,
  accountId: 'brand',
  count,
});

const engines = await storeEngines();

/** A server on one engine of the store matrix (PostgreSQL's pool runs reads and writes concurrently). */
async function startOn(engine: StoreEngine) {
  const store = await engine.setup();
  const server = await startTestServer({ config: store.config });
  const dispose = server[Symbol.asyncDispose];
  return Object.assign(server, {
    [Symbol.asyncDispose]: async () => {
      await dispose();
      await store[Symbol.asyncDispose]();
    },
  });
}

/** A subscription through the service: its snapshot's count, then the counts it received live. */
function subscribe(server: Awaited<ReturnType<typeof startTestServer>>, signal: AbortSignal) {
  const seen = { snapshot: null as number | null, live: [] as number[] };
  const stream = server.services.dashboard.onUpdate(acme, signal);
  void (async () => {
    for await (const event of stream as AsyncIterable<DashboardEvent>) {
      if (event.type === 'snapshot') {
        const value = event.updates.find((u) => u.key === 'followers:instagram:brand');
        seen.snapshot = value && 'count' in value ? Number(value.count) : 0;
      } else if ('count' in event) seen.live.push(Number(event.count));
    }
  })().catch(() => {});
  return seen;
}

describe.each(engines)('dashboard first snapshot shared by concurrent subscriptions on $name', (engine) => {
  it.skipIf(engine.unavailable)('subscriptions asking in the same turn share one store read', async () => {
    await using server = await startOn(engine);
    await server.caller.dashboard.publish(update(7));
    const reads = vi.spyOn(server.services.dashboard, 'snapshot');
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const subs = Array.from({ length: 10 }, () => subscribe(server, abort.signal));
    await vi.waitFor(() => expect(subs.every((s) => s.snapshot !== null)).toBe(true));
    expect(reads).toHaveBeenCalledTimes(1);
    expect(subs.map((s) => s.snapshot)).toEqual(Array(10).fill(7));
    abort.abort();
  });

  it.skipIf(engine.unavailable)(
    'stays exact under a concurrent writer: after the snapshot values only move forward, to the last one',
    async () => {
      await using server = await startOn(engine);
      const reads = vi.spyOn(server.services.dashboard, 'snapshot');
      const abort = new AbortController();
      setMaxListeners(0, abort.signal);
      const subs: Array<ReturnType<typeof subscribe>> = [];
      const last = 200;
      let writing = true;
      // Bursts of subscriptions (several in one turn, so they share reads) while the writer runs.
      const subscriber = (async () => {
        while (writing) {
          for (let i = 0; i < 4; i++) subs.push(subscribe(server, abort.signal));
          await sleep(Math.random() * 3);
        }
      })();
      for (let count = 1; count <= last; count++) {
        await server.caller.dashboard.publish(update(count));
        if (count % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      writing = false;
      await subscriber;
      await vi.waitFor(
        () => {
          for (const s of subs) {
            expect(s.snapshot).not.toBeNull();
            const final = s.live.length > 0 ? s.live[s.live.length - 1] : s.snapshot;
            expect(final).toBe(last);
          }
        },
        { timeout: 10_000 },
      );
      expect(subs.length).toBeGreaterThan(20);
      // Reads were shared: fewer store reads than subscriptions.
      expect(reads.mock.calls.length).toBeLessThan(subs.length);
      for (const s of subs) {
        const snapshot = s.snapshot as number;
        // What the snapshot already holds may also arrive live once (a write committed between the
        // attach and the read). After it, values only move forward and end at the last one. NOTE: not
        // every value: this is a latest-value stream, and a consumer that lags (this iterator under a
        // loaded CI) has a queued value replaced by the newer one for the same key, by design.
        const after = s.live.filter((count) => count > snapshot);
        for (let i = 1; i < after.length; i++) expect(after[i]).toBeGreaterThan(after[i - 1] as number);
        expect(after.at(-1) ?? snapshot).toBe(last);
      }
      abort.abort();
    },
  );
});
