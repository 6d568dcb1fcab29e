import { describe, expect, it, vi } from 'vitest';
import { collect, connectWsOnly, startTestServer, memoryLog, openRaw } from '../../test/support/vitest.js';

describe('operations', () => {
  it('GET /metrics exposes connections, subscriptions, events, lag, drops, limits and auth failures', async () => {
    await using server = await startTestServer({ config: { nodeId: 'node-m' } });
    await using alice = connectWsOnly(
      server.wsUrl,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    const seen = collect();
    alice.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    await alice.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    const bad = await openRaw(server.wsUrl, { params: { token: 'nope' } });
    await bad.closed;

    expect((await fetch(`${server.url}/realtime/stats/workspace/acme`)).status).toBe(401);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('pulse_connections{node="node-m"} 1');
    expect(text).toContain('pulse_subscriptions{procedure="presence.onChange",node="node-m"} 1');
    expect(text).toContain('pulse_events_published_total{kind="presence",type="join",node="node-m"} 1');
    expect(text).toContain('pulse_events_delivered_total{kind="presence",type="join",node="node-m"} 1');
    expect(text).toMatch(/pulse_delivery_lag_seconds_count\{node="node-m"\} [1-9]/);
    expect(text).toContain('pulse_auth_failures_total{transport="ws",reason="malformed",node="node-m"} 1');
    expect(text).toContain('pulse_auth_failures_total{transport="http",reason="missing",node="node-m"} 1');
    expect(text).toContain('# TYPE pulse_events_dropped_total counter');
    expect(text).toContain('# TYPE pulse_rate_limited_total counter');
    expect(text).toContain('pulse_process_cpu_user_seconds_total');
  });

  it('GET /healthz and /readyz answer while the store and bus are up', async () => {
    await using server = await startTestServer({ config: { nodeId: 'node-h' } });
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true, nodeId: 'node-h' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('logs JSON lines with connection ids and never a token', async () => {
    const { lines, logger } = memoryLog();
    await using server = await startTestServer({ logger });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send({ id: 1, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'globex' } } });
    await raw.next((m) => m.id === 1);
    await raw.close();
    const expired = await server.token({ sub: 'bob', expiresInSec: -10 });
    const bad = await openRaw(server.wsUrl, { params: { token: expired } });
    await bad.closed;
    await fetch(`${server.url}/realtime/stats`, { headers: { authorization: `Bearer ${expired}` } });
    await vi.waitFor(() => expect(lines.some((l) => l.includes('connection closed'))).toBe(true));
    const records = lines.map((l) => JSON.parse(l));
    expect(records).toContainEqual(
      expect.objectContaining({
        msg: 'connection authenticated',
        userId: 'alice',
        connectionId: expect.any(String),
        nodeId: 'node-log',
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({ msg: 'token refused', reason: 'Token expired' }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({ msg: 'WebSocket call refused', code: 'FORBIDDEN' }),
    );
    for (const line of lines) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(expired);
    }
    // Fields named like secrets are redacted wherever they appear.
    logger.info({ token, req: { headers: { authorization: `Bearer ${token}` } } }, 'probe');
    const probe = JSON.parse(lines.at(-1)!);
    expect(probe.token).toBe('[redacted]');
    expect(probe.req.headers.authorization).toBe('[redacted]');
  });
});
