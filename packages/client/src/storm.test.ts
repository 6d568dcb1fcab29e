import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mintToken, startPulseServer } from '@pulse/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createPulseClient, type PulseClient } from './index.js';

const SECRET = 'storm-test-secret-long-enough-for-hs256-0123456789';
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close().catch(() => {});
});

const note = (n: number) => ({
  type: 'mention' as const,
  title: `Note ${n}`,
  data: { platform: 'twitter' as const, author: '@fan', text: `hello ${n}` },
});

describe('a connection storm larger than the handshake limit', () => {
  it('sheds upgrades with HTTP 503, and every client ends connected with every notification exactly once, in order', async () => {
    const server = await startPulseServer({
      sqliteFile: ':memory:',
      config: {
        port: 0,
        host: '127.0.0.1',
        logLevel: 'silent',
        jwt: { secret: SECRET },
        // A tiny limit so a storm of 120 sockets at once is far past it.
        limits: { maxPendingHandshakes: 3 },
      },
    });
    open.push({ close: () => server.close({ graceMs: 0 }) });
    const refusals: string[] = [];
    class RecordingWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.on('error', (error: Error) => refusals.push(error.message));
      }
    }
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const total = 120;
    const sent = 15;
    const seen: string[][] = [];
    const clients: PulseClient[] = [];
    for (let i = 0; i < total; i++) {
      const ids: string[] = [];
      seen.push(ids);
      const client = createPulseClient({
        url: server.url,
        WebSocket: RecordingWebSocket,
        token: () => mintToken(server.config.jwt, { sub: `u${i}`, workspaces: { acme: 'member' } }),
        retry: { baseMs: 20, maxMs: 200 },
      });
      clients.push(client);
      open.push(client);
      client.trpc.notifications.onNotification.subscribe(
        { workspaceId: 'acme', lastEventId: '0' },
        {
          onData: (event) => {
            const tracked = event as { id: string; data: { type: string; notification?: { title: string } } };
            if (tracked.data.type === 'notification') ids.push(tracked.data.notification?.title ?? '?');
          },
        },
      );
    }
    // Published while the storm is still being let in: replay plus live must give each client all.
    for (let n = 1; n <= 10; n++) await server.publish.sendWorkspaceNotification('acme', note(n));
    await vi.waitFor(
      () => expect(clients.filter((c) => c.getConnectionState().status === 'connected')).toHaveLength(total),
      {
        timeout: 30_000,
        interval: 50,
      },
    );
    for (let n = 11; n <= sent; n++) await server.publish.sendWorkspaceNotification('acme', note(n));
    const expected = Array.from({ length: sent }, (_, i) => `Note ${i + 1}`);
    await vi.waitFor(() => expect(seen.filter((ids) => ids.length >= sent)).toHaveLength(total), {
      timeout: 30_000,
      interval: 50,
    });
    delay.disable();
    // Nothing lost, nothing doubled, in order, in every client.
    for (const ids of seen) expect(ids).toEqual(expected);
    // The limit was really hit: some upgrades were refused with 503 before the handshake, and retried.
    const shed = refusals.filter((message) => message === 'Unexpected server response: 503').length;
    expect(shed).toBeGreaterThan(0);
    expect(server.stats().transport.connections).toBe(total);
    console.log(
      `storm: ${total} clients, limit 3 pending handshakes, ${shed} upgrades refused with 503; event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`,
    );
  }, 90_000);
});
