import { setMaxListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { type StoreEngine, sleep, startTestServer, storeEngines } from '../../test/support/vitest.js';

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

const alert = (title: string) => ({
  workspaceId: 'acme',
  type: 'alert' as const,
  title,
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

/** A fresh subscription through the service: the head of its `sync`, then the ids it received live. */
function subscribe(server: Awaited<ReturnType<typeof startOn>>, userId: string, signal: AbortSignal) {
  const seen = { head: null as number | null, live: [] as number[] };
  const stream = server.services.notifications.subscribe({ userId, workspaceId: 'acme', signal });
  void (async () => {
    for await (const envelope of stream) {
      const [id, event] = envelope as unknown as [string, { type: string; headId?: string }];
      if (event.type === 'sync') seen.head = Number(event.headId);
      else seen.live.push(Number(id));
    }
  })().catch(() => {});
  return seen;
}

describe.each(engines)('notifications: fresh subscriptions share their head read on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'stays exact under a concurrent sender: every event after the sync arrives once, in order',
    async () => {
      await using server = await startOn(engine);
      // The stream's head read (private to the service).
      const { stream } = server.services.notifications as unknown as {
        stream: { head(w: string): Promise<string> };
      };
      const reads = vi.spyOn(stream, 'head');
      const abort = new AbortController();
      setMaxListeners(0, abort.signal);
      const subs: Array<ReturnType<typeof subscribe>> = [];
      const last = 120;
      let sending = true;
      const subscriber = (async () => {
        // Bursts of subscriptions of different users (several in one turn, so they share reads).
        while (sending) {
          for (let i = 0; i < 4; i++) subs.push(subscribe(server, `u${subs.length}`, abort.signal));
          await sleep(Math.random() * 3);
        }
      })();
      for (let n = 1; n <= last; n++) {
        await server.caller.notifications.send(alert(`n${n}`));
        if (n % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      sending = false;
      await subscriber;
      await vi.waitFor(
        () => {
          for (const s of subs) {
            expect(s.head).not.toBeNull();
            expect(s.live.length > 0 ? s.live[s.live.length - 1] : s.head).toBe(last);
          }
        },
        { timeout: 10_000 },
      );
      expect(subs.length).toBeGreaterThan(20);
      expect(reads.mock.calls.length).toBeLessThan(subs.length);
      for (const s of subs) {
        const head = s.head as number;
        expect(s.live).toEqual(Array.from({ length: last - head }, (_, i) => head + 1 + i));
      }
      abort.abort();
    },
  );
});
