import { expect, vi } from 'vitest';
import type { PulseServer } from '../../src/server.js';
import { collect, connectClient } from './client.js';
import type { TestServer } from './server.js';

/** Proves the node still serves a fresh client end to end: subscribe, publish, receive. */
export async function expectHealthy(server: TestServer) {
  const client = connectClient(
    server,
    await server.token({ sub: 'healthy', workspaces: { 'health-ws': 'admin' } }),
  );
  try {
    const seen = collect<{ type: string }>();
    const sub = client.trpc.presence.onChange.subscribe({ workspaceId: 'health-ws' }, seen);
    await vi.waitFor(() => expect(seen.items[0]).toMatchObject({ type: 'snapshot' }), { timeout: 5_000 });
    await server.caller.presence.list({ workspaceId: 'health-ws' });
    await server.services.hub.publish('presence:health-ws', {
      type: 'leave',
      workspaceId: 'health-ws',
      at: new Date().toISOString(),
      userId: 'nobody',
    });
    await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'leave' })), {
      timeout: 5_000,
    });
    sub.unsubscribe();
  } finally {
    await client.close();
  }
}

/** Every connection, subscription, hub topic and timer is gone once the clients are. */
export async function expectDrained(server: PulseServer) {
  await vi.waitFor(
    () => {
      const s = server.stats();
      expect(s.transport).toMatchObject({ connections: 0, subscriptions: 0, users: 0 });
      expect(s.transport.subscriptionsByPath).toEqual({});
      expect(s.hub).toMatchObject({ topics: 0, sinks: 0 });
      expect(s.presence).toMatchObject({ connections: 0, graceTimers: 0, typing: 0 });
      expect(s.operations).toEqual({ connections: 0, workspaceSubscriptions: 0 });
    },
    { timeout: 8_000, interval: 25 },
  );
}
