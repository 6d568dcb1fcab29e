import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Writable } from 'node:stream';
import { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/infra/log.js';
import type { AppRouter } from '../../src/router.js';
import { connectWsOnly, sleep, startTestServer, openRaw } from '../support/vitest.js';

/** A raw TCP client: everything the server wrote and whether it closed the socket. */
function rawTcp(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => {
    received += chunk.toString();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, connected, closed, received: () => received };
}

const codeOf = (error: unknown) =>
  error instanceof TRPCClientError ? (error as TRPCClientError<AppRouter>).data?.code : undefined;

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const input = (value: unknown) => encodeURIComponent(JSON.stringify(value));

describe('abuse: HTTP', () => {
  it('refuses a subscription over HTTP (no SSE stream): METHOD_NOT_SUPPORTED, nothing counted or left open', async () => {
    await using server = await startTestServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const res = await fetch(`${server.url}/trpc/presence.onChange?input=${input({ workspaceId: 'acme' })}`, {
      headers: { ...auth(token), accept: 'text/event-stream' },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    // The whole body arrives and ends: no stream is held open.
    const body = await res.json();
    expect(body.error).toMatchObject({
      message: expect.stringContaining('Subscriptions are served over the WebSocket only'),
      data: { code: 'METHOD_NOT_SUPPORTED', httpStatus: 405 },
    });
    // tRPC's own SSE path is off too (a batched or POSTed subscription never streams).
    const posted = await fetch(`${server.url}/trpc/notifications.onNotification`, {
      method: 'POST',
      headers: { ...auth(token), 'content-type': 'application/json' },
      body: JSON.stringify({ workspaceId: 'acme' }),
    });
    expect(posted.status).toBe(405);
    expect((await posted.json()).error.data.code).toBe('METHOD_NOT_SUPPORTED');
    const stats = server.stats();
    expect(stats.transport.subscriptions).toBe(0);
    expect(stats.hub.topics).toBe(0);
    expect(await server.caller.stats.workspace({ workspaceId: 'acme' })).toMatchObject({ subscriptions: 0 });
  });

  it('caps HTTP batches at limits.maxBatch (400 BAD_REQUEST past it, served at it)', async () => {
    await using server = await startTestServer({ config: { limits: { maxBatch: 4, maxSubscriptions: 4 } } });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => 'presence.list').join(',');
      const inputs = Object.fromEntries(Array.from({ length: n }, (_, i) => [i, { workspaceId: 'acme' }]));
      return fetch(`${server.url}/trpc/${paths}?batch=1&input=${input(inputs)}`, { headers: auth(token) });
    };
    const over = await batch(5);
    expect(over.status).toBe(400);
    expect(JSON.stringify(await over.json())).toMatch(
      /"code":"BAD_REQUEST".*|Batch call exceeds maximum size/,
    );
    const atCap = await batch(4);
    expect(atCap.status).toBe(200);
    expect(await atCap.json()).toHaveLength(4);
    // Mutations (POST) are capped the same way.
    const n = 1000;
    const paths = Array.from({ length: n }, () => 'presence.set').join(',');
    const body = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [i, { workspaceId: 'acme', status: 'online' }]),
    );
    const flood = await fetch(`${server.url}/trpc/${paths}?batch=1`, {
      method: 'POST',
      headers: { ...auth(token), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(flood.status).toBe(400);
    const text = await flood.text();
    expect(text).toContain('Batch call exceeds maximum size');
    expect(text).toContain('BAD_REQUEST');
  });

  it('cuts off partial headers and trickled bodies with 408 and closes the socket', async () => {
    await using server = await startTestServer({
      config: { limits: { headersTimeoutMs: 200, requestTimeoutMs: 400 } },
    });
    const partial = rawTcp(server.port);
    await partial.connected;
    partial.socket.write('GET /healthz HTTP/1.1\r\nHost: pulse\r\nX-Slow: ');
    await partial.closed;
    expect(partial.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);

    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    for (const path of ['/realtime/notifications/send', '/trpc/presence.set']) {
      const trickle = rawTcp(server.port);
      await trickle.connected;
      trickle.socket.write(
        `POST ${path} HTTP/1.1\r\nHost: pulse\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"workspaceId":`,
      );
      const drip = setInterval(() => trickle.socket.write(' '), 50);
      await trickle.closed;
      clearInterval(drip);
      expect({ path, head: trickle.received().slice(0, 30) }).toEqual({
        path,
        head: 'HTTP/1.1 408 Request Timeout\r\n',
      });
    }
    // Well-behaved clients are unaffected.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('never applies the HTTP request timeouts to an upgraded WebSocket', async () => {
    await using server = await startTestServer({
      // NOTE: short, but not so short that a loaded CI machine misses them while the upgrade itself
      // is on its way (a 100 ms headers timeout answered the upgrade with 408 at load 12).
      config: { limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 1_200, keepAliveTimeoutMs: 500 } },
    });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    // Several request-timeout periods (and Node's check interval) pass: the socket must still serve.
    // NOTE: a real wait on purpose: these are node:http's own timeouts on a real socket (checked
    // against its internal clock), which vitest's fake timers do not drive.
    await sleep(3_000);
    raw.send({ id: 1, method: 'query', params: { path: 'presence.list', input: { workspaceId: 'acme' } } });
    expect((await raw.next((m) => m.id === 1)).result).toMatchObject({ type: 'data', data: [] });
    expect(raw.socket.readyState).toBe(raw.socket.OPEN);
    await raw.close();
  });

  it('drops connections past limits.maxConnections and accepts again once one closes', async () => {
    await using server = await startTestServer({ config: { limits: { maxConnections: 3 } } });
    const held = [rawTcp(server.port), rawTcp(server.port), rawTcp(server.port)];
    await Promise.all(held.map((c) => c.connected));
    // Each held socket is known to the server once it answered a request on it.
    for (const c of held) c.socket.write('GET /healthz HTTP/1.1\r\nHost: pulse\r\n\r\n');
    await vi.waitFor(() => {
      for (const c of held) expect(c.received()).toContain('HTTP/1.1 200');
    });
    const extra = rawTcp(server.port);
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: pulse\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe('');
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await vi.waitFor(async () => {
      const again = rawTcp(server.port);
      again.socket.write('GET /healthz HTTP/1.1\r\nHost: pulse\r\nConnection: close\r\n\r\n');
      await again.closed;
      expect(again.received()).toContain('HTTP/1.1 200');
    });
    for (const c of held) c.socket.destroy();
  });

  it('rate limits queries per connection over WebSocket and HTTP (TOO_MANY_REQUESTS), never subscriptions', async () => {
    await using server = await startTestServer({
      config: { limits: { queryRatePerSec: 1, queryBurst: 3 } },
    });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    await using ws = connectWsOnly(server.wsUrl, token);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => ws.trpc.presence.list.query({ workspaceId: 'acme' })),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(codeOf((r as PromiseRejectedResult).reason)).toBe('TOO_MANY_REQUESTS');
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);

    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${server.url}/trpc/presence.list?input=${input({ workspaceId: 'acme' })}`, {
        headers: auth(token),
      });
      statuses.push(res.status);
      if (res.status === 429) expect((await res.json()).error.data.code).toBe('TOO_MANY_REQUESTS');
    }
    expect(statuses).toContain(429);

    // Subscriptions are exempt: many at once, all served.
    const subs = Array.from({ length: 20 }, () => {
      let unsubscribe = () => {};
      const started = new Promise<void>((resolve, reject) => {
        unsubscribe = ws.trpc.presence.onChange.subscribe(
          { workspaceId: 'acme' },
          { onData: () => resolve(), onError: reject },
        ).unsubscribe;
      });
      return started.finally(() => unsubscribe());
    });
    await Promise.all(subs);
  });

  it('serves /metrics behind the metrics token when one is set', async () => {
    await using server = await startTestServer({
      config: { ops: { metricsToken: 'metrics-secret-0123456789' } },
    });
    const none = await fetch(`${server.url}/metrics`);
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe('UNAUTHORIZED');
    expect((await fetch(`${server.url}/metrics`, { headers: auth('wrong-token-0123456789') })).status).toBe(
      401,
    );
    const ok = await fetch(`${server.url}/metrics`, { headers: auth('metrics-secret-0123456789') });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('pulse_');
  });

  it('serves /metrics on the ops port only when PULSE_OPS_PORT is set', async () => {
    await using server = await startTestServer({ config: { ops: { port: 0 } } });
    expect(server.opsPort).toEqual(expect.any(Number));
    const publicMetrics = await fetch(`${server.url}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect((await publicMetrics.json()).error.code).toBe('NOT_FOUND');
    const ops = `http://127.0.0.1:${server.opsPort}`;
    const metrics = await fetch(`${ops}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('pulse_');
    expect(await (await fetch(`${ops}/readyz`)).json()).toEqual({ ok: true });
    expect((await fetch(`${ops}/trpc/presence.list`)).status).toBe(404);
    // The public port still answers probes.
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  if (!external)
    console.warn('skipping the non-loopback /metrics test: this machine has no external IPv4 address');
  it.skipIf(!external)(
    'without token or ops port, /metrics answers loopback callers only (403 otherwise)',
    async () => {
      await using server = await startTestServer({ config: { host: '0.0.0.0' } });
      expect((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status).toBe(200);
      const remote = await fetch(`http://${external}:${server.port}/metrics`);
      expect(remote.status).toBe(403);
      expect((await remote.json()).error.code).toBe('FORBIDDEN');
      expect((await fetch(`http://${external}:${server.port}/healthz`)).status).toBe(200);
    },
  );

  it('logs client faults at debug without a stack, and only server faults at error', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    await using server = await startTestServer({
      logger: createLogger({ level: 'debug', nodeId: 'log', destination }),
    });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const post = (path: string, body: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { ...auth(token), 'content-type': 'application/json' },
        body,
      });
    const faults = [
      await post('/trpc/presence.set', '{"workspaceId":'), // PARSE_ERROR
      await post('/trpc/presence.set', '{"workspaceId":"acme","status":"dancing"}'), // BAD_REQUEST
      await fetch(`${server.url}/trpc/presence.set`, { headers: auth(token) }), // METHOD_NOT_SUPPORTED
      await fetch(`${server.url}/trpc/presence.onChange`, { headers: auth(token) }), // subscription over HTTP
      await fetch(`${server.url}/trpc/nope.nothing`, { headers: auth(token) }), // NOT_FOUND
      await post('/realtime/notifications/send', '{'), // REST PARSE_ERROR
    ];
    expect(faults.map((r) => r.status)).toEqual([400, 400, 405, 405, 404, 400]);
    // A request target that is no URL (`GET //[`) is the client's fault too: 400, not a 500.
    const malformed = rawTcp(server.port);
    malformed.socket.write('GET //[ HTTP/1.1\r\nHost: pulse\r\nConnection: close\r\n\r\n');
    await malformed.closed;
    expect(malformed.received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(malformed.received()).toContain('Malformed request target');
    const refused = await vi.waitFor(() => {
      const found = lines.filter((l) => l.msg === 'HTTP request refused');
      expect(found.map((l) => l.code)).toEqual(
        expect.arrayContaining(['PARSE_ERROR', 'BAD_REQUEST', 'METHOD_NOT_SUPPORTED', 'NOT_FOUND']),
      );
      expect(found.filter((l) => l.message === 'Malformed request target')).toHaveLength(1);
      expect(found.map((l) => l.code).filter((c) => c === 'BAD_REQUEST').length).toBeGreaterThanOrEqual(2);
      return found;
    });
    for (const line of refused) {
      expect(line.level).toBe(20);
      expect(JSON.stringify(line)).not.toContain('"stack"');
    }
    expect(lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});
