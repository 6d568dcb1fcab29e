import type { Bus, BusHandler, BusMessage, BusSubscription } from './bus.js';

/** In-process bus for a single node: synchronous fan-out, no serialisation. */
export function createMemoryBus(): Bus {
  const topics = new Map<string, Set<BusHandler>>();
  return {
    kind: 'memory',
    async publish(topic, message: BusMessage) {
      const handlers = topics.get(topic);
      if (!handlers) return;
      for (const handler of handlers) handler(message);
    },
    subscribe(topic, handler): BusSubscription {
      let handlers = topics.get(topic);
      if (!handlers) {
        handlers = new Set();
        topics.set(topic, handlers);
      }
      handlers.add(handler);
      return {
        ready: Promise.resolve(),
        async close() {
          const set = topics.get(topic);
          if (!set) return;
          set.delete(handler);
          if (set.size === 0) topics.delete(topic);
        },
      };
    },
    onResync() {
      return () => {};
    },
    async ping() {},
    async close() {
      topics.clear();
    },
  };
}
