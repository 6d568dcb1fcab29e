import { describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import type { Bus, BusHandler, BusMessage } from './bus/bus.js';
import { Hub } from './hub.js';
import { liveDurable } from './live.js';

/** A bus that can lose messages (publish to nobody) and tells the hub when it resynced. */
function lossyBus() {
  const handlers = new Map<string, Set<BusHandler>>();
  const bus: Bus = {
    kind: 'memory',
    async publish(topic, message: BusMessage) {
      for (const handler of handlers.get(topic) ?? []) handler(message);
    },
    subscribe(topic, handler) {
      let set = handlers.get(topic);
      if (!set) {
        set = new Set();
        handlers.set(topic, set);
      }
      set.add(handler);
      return {
        ready: Promise.resolve(),
        async close() {
          handlers.get(topic)?.delete(handler);
        },
      };
    },
    onResync() {
      return () => {};
    },
    async ping() {},
    async close() {},
  };
  return bus;
}

// Found while reading the chaos runner's lost-events report (RELIABILITY.md): a resync replay that
// fails (the store did not answer) must not send the stream live past the hole it was meant to fill.
describe('durable live stream: a failed resync replay', () => {
  it('is retried, so the events the bus lost still arrive once, in order', async () => {
    const bus = lossyBus();
    const hub = new Hub(bus, { reorderWindowMs: 20 });
    const store: Array<{ id: string; data: { n: number } }> = [];
    let storeDown = false;
    let failedReads = 0;
    const append = (n: number) => {
      const event = { id: String(n), data: { n } };
      store.push(event);
      return event;
    };
    const controller = new AbortController();
    const stream = liveDurable<{ n: number }>(hub, {
      topic: 't',
      lastEventId: '0',
      signal: controller.signal,
      initial: async (afterId) => {
        if (storeDown) {
          failedReads++;
          throw new Error('store down');
        }
        return store.filter((e) => Number(e.id) > Number(afterId ?? 0));
      },
    });
    const got: string[] = [];
    const consuming = (async () => {
      for await (const envelope of stream) got.push(String((envelope as unknown as [string])[0]));
    })();

    const e1 = append(1);
    await waitFor(async () => {
      await bus.publish('t', e1);
      return got.length > 0;
    });
    expect(got).toEqual(['1']);
    // 2 and 3 are committed but lost on the bus; 4 arrives: the hub's window elapses with a hole,
    // it moves its baseline to 4 and asks the subscriber to replay — while the store is down.
    append(2);
    append(3);
    storeDown = true;
    await bus.publish('t', append(4));
    await waitFor(() => failedReads > 0);
    storeDown = false;
    await bus.publish('t', append(5));

    await waitFor(() => got.length >= 5, { timeoutMs: 5_000 });
    expect(got).toEqual(['1', '2', '3', '4', '5']);
    controller.abort();
    await consuming;
  });
});
