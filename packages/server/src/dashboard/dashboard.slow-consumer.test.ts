import { describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startTestServer } from '../../test/support/vitest.js';
import type { DashboardUpdateEvent } from './dashboard.schema.js';
import { dashboardTopic } from './dashboard.service.js';

const KEYS = 8;

/** Sum of `pulse_events_dropped_total{reason="…"}` in the node's Prometheus text. */
async function droppedTotal(url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('pulse_events_dropped_total') && l.includes(`"${reason}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('dashboard slow consumer', () => {
  it('a socket that stops reading keeps only the latest value per key and stays open', async () => {
    await using server = await startTestServer({
      config: { limits: { slowDropBytes: 16 * 1024, slowCloseBytes: 256 * 1024 * 1024 } },
    });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const socket = new WebSocket(`${server.wsUrl}?connectionParams=1`);
    const latest = new Map<string, number>();
    let received = 0;
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { result?: { type: string; data?: DashboardUpdateEvent } };
      const data = message.result?.data;
      if (message.result?.type !== 'data' || data?.type !== 'update' || data.kind !== 'metric') return;
      received++;
      // Per key, values only ever increase: coalescing never delivers an older value after a newer one.
      expect(data.value).toBeGreaterThan(latest.get(data.key) ?? -1);
      latest.set(data.key, data.value);
    });
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
    socket.send(
      JSON.stringify({
        id: 1,
        method: 'subscription',
        params: { path: 'dashboard.onUpdate', input: { workspaceId: 'acme', kinds: ['metric'] } },
      }),
    );
    await vi.waitFor(() => expect(server.stats().hub.sinks).toBe(1));

    // The client stops reading: the server's socket buffer grows past the drop mark.
    (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const padding = 'x'.repeat(1500);
    let published = 0;
    const publish = (value: number, k: number) => {
      published++;
      const event: DashboardUpdateEvent & { padding: string } = {
        type: 'update',
        workspaceId: 'acme',
        at: new Date().toISOString(),
        key: `metric:instagram:brand:m${k}`,
        kind: 'metric',
        platform: 'instagram',
        accountId: 'brand',
        metric: `m${k}`,
        value,
        padding,
      };
      return server.services.hub.publish(dashboardTopic('acme'), event);
    };
    let value = 0;
    for (let batch = 0; batch < 80 && (await droppedTotal(server.url, 'coalesced')) === 0; batch++) {
      for (let i = 0; i < 500; i++) await publish(value++, i % KEYS);
    }
    expect(await droppedTotal(server.url, 'coalesced')).toBeGreaterThan(0);
    const finalValue = value + 1;
    for (let k = 0; k < KEYS; k++) await publish(finalValue, k);

    (socket as unknown as { _socket: { resume(): void } })._socket.resume();
    await vi.waitFor(
      () => {
        expect(latest.size).toBe(KEYS);
        for (const v of latest.values()) expect(v).toBe(finalValue);
      },
      { timeout: 20_000 },
    );
    expect(received).toBeLessThan(published);
    expect(closed).toBe(false);
    socket.close();
  });
});
