/**
 * Issue 12, transport items, against a real Pulse node over real sockets: nothing a client sends
 * (an upgrade target, a token's claims, a frame, a flood of queries) may end the process, flood the
 * log, or make the server buffer without bound.
 */
import { connect, type Socket } from 'node:net';
import { createTRPCClient, createWSClient, TRPCClientError, wsLink } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../../src/router.js';
import {
  startTestServer,
  expectDrained,
  expectHealthy,
  memoryLog,
  openRaw,
  wireCode,
} from '../support/vitest.js';

const UPGRADE_HEADERS =
  'Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Writes `request` on a raw TCP socket and resolves with everything the server sent until it closed. */
function rawHttp(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

/** Completes a WebSocket handshake by hand; the socket then never answers anything (no close frame). */
function silentSocket(port: number): Promise<{ socket: Socket; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const ended = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {});
    socket.once('data', (chunk) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(chunk.toString()));
      else resolve({ socket, ended });
    });
    socket.write(`GET /trpc?connectionParams=1 HTTP/1.1\r\n${UPGRADE_HEADERS}`);
  });
}

/** Waits until the node reports a socket dropped as a slow consumer (it hit its close mark). */
async function slowDropSeen(url: string) {
  await vi.waitFor(
    async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/pulse_events_dropped_total\{[^}]*reason="slow"[^}]*\} [1-9]/);
    },
    { timeout: 15_000, interval: 50 },
  );
}

const alert = (title: string) => ({
  workspaceId: 'acme',
  type: 'alert' as const,
  title,
  body: 'x'.repeat(900),
  data: { alertType: 'system' as const, severity: 'info' as const, message: title },
});

describe('transport robustness (issue 12)', () => {
  it.each([
    ['GET //[ HTTP/1.1', '//['],
    ['GET http://[::1/trpc HTTP/1.1', 'http://[::1/trpc'],
  ])('an upgrade target that is not a URL (%s) gets 400 and the node keeps serving', async (_, target) => {
    await using server = await startTestServer();
    const reply = await rawHttp(server.port, `GET ${target} HTTP/1.1\r\n${UPGRADE_HEADERS}`);
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('a signed token whose long multi-byte claims fail validation is refused with 4401, no crash', async () => {
    await using server = await startTestServer();
    // Long multi-byte workspace ids fail the id schema; the refusal quotes them (far over 123 bytes).
    const token = await server.token({ sub: 'mallory', workspaces: { ['ü'.repeat(200)]: 'admin' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    const { code, reason } = await raw.closed;
    expect(code).toBe(4401);
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
    expect(wireCode(raw.messages[0])).toBe('UNAUTHORIZED');
    expect(raw.messages[0]?.error?.message).toMatch(/Invalid token claims/);
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('protocol errors caused by the client are logged at debug level without a stack', async () => {
    const { lines, logger } = memoryLog();
    await using server = await startTestServer({ logger });
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.send('{"id":1,"method":');
    raw.send(Buffer.from('binary'));
    raw.send({ id: 2, method: 'query', params: { path: 'nope.missing', input: {} } });
    await raw.next((m) => m.id === 2);
    // A frame with RSV2/RSV3 set (invalid without an extension): ws refuses it and closes with 1002.
    const tcp = (raw.socket as unknown as { _socket: Socket })._socket;
    tcp.write(Buffer.from([0xb1, 0x80, 0, 0, 0, 0]));
    expect((await raw.closed).code).toBe(1002);
    await vi.waitFor(() => expect(lines.join('\n')).toContain('"code":"BAD_REQUEST"'));
    const entries = lines.map((line) => JSON.parse(line) as { level: number; code?: string; err?: unknown });
    const refusals = entries.filter((e) => e.code !== undefined);
    expect(refusals.map((e) => e.code)).toEqual(
      expect.arrayContaining(['PARSE_ERROR', 'NOT_FOUND', 'BAD_REQUEST']),
    );
    expect(entries.filter((e) => e.level >= 40)).toEqual([]);
    expect(lines.filter((line) => line.includes('"stack"'))).toEqual([]);
    await expectHealthy(server);
  });

  it('the auth timeout ends a silent socket at once, without waiting for its close handshake', async () => {
    await using server = await startTestServer({ config: { limits: { authTimeoutMs: 100 } } });
    const silent = await silentSocket(server.port);
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(1));
    // The socket never answers the close frame; ws alone would keep it 30 s more.
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(0), { timeout: 5_000 });
    await silent.ended;
    expect(silent.socket.destroyed).toBe(true);
    await expectDrained(server);
  });

  it('caps not-yet-authenticated sockets per IP at 100 by default (HTTP 429); the node keeps serving', async () => {
    await using server = await startTestServer();
    const waiting = await Promise.all(
      Array.from({ length: 100 }, () => openRaw(server.wsUrl, { params: false })),
    );
    await expect(openRaw(server.wsUrl, { params: false })).rejects.toThrow('HTTP 429');
    // Authenticating one frees its slot.
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    waiting[0]?.send({ method: 'connectionParams', data: { token } });
    waiting[0]?.send({
      id: 1,
      method: 'query',
      params: { path: 'presence.list', input: { workspaceId: 'acme' } },
    });
    await waiting[0]?.next((m) => m.id === 1);
    const late = await openRaw(server.wsUrl, { params: false });
    await Promise.all([...waiting, late].map((raw) => raw.close()));
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('a waiting query and subscription get UNAUTHORIZED when the token is refused (official client)', async () => {
    await using server = await startTestServer();
    const wsClient = createWSClient({
      url: server.wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: async () => ({ token: 'not.a.jwt' }),
      retryDelayMs: () => 60_000,
    });
    try {
      const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient })] });
      const errors: unknown[] = [];
      trpc.notifications.onNotification.subscribe(
        { workspaceId: 'acme' },
        { onError: (error) => errors.push(error) },
      );
      const query = trpc.presence.list.query({ workspaceId: 'acme' }).catch((error: unknown) => error);
      const queryError = await query;
      expect(queryError).toBeInstanceOf(TRPCClientError);
      expect((queryError as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED');
      await vi.waitFor(() => expect(errors).toHaveLength(1));
      expect((errors[0] as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED');
    } finally {
      await wsClient.close();
    }
    await expectDrained(server);
  });

  it('a member who stops reading and floods notifications.list is closed with 4008, not buffered', async () => {
    await using server = await startTestServer({
      config: { limits: { rateLimitPerSec: 10_000, rateLimitBurst: 10_000 } },
    });
    for (let i = 0; i < 100; i++) await server.caller.notifications.send(alert(`n${i}`));
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    const one = {
      id: 0,
      method: 'query',
      params: { path: 'notifications.list', input: { workspaceId: 'acme', limit: 100 } },
    };
    raw.send(one);
    const first = await raw.next((m) => m.id === 0);
    const replyBytes = JSON.stringify(first).length;
    expect(replyBytes).toBeGreaterThan(50_000);
    // Stop reading, then ask for 20 frames × 128 replies of ~100 KB (≈ 256 MB if all were buffered).
    raw.socket.pause();
    const frames = 20;
    let nextId = 1;
    for (let f = 0; f < frames; f++) {
      raw.send(Array.from({ length: 128 }, () => ({ ...one, id: nextId++ })));
    }
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().external;
    await slowDropSeen(server.url);
    raw.socket.resume();
    const { code } = await raw.closed;
    expect(code).toBe(4008);
    const replies = raw.messages.filter((m) => typeof m.id === 'number' && m.id > 0 && m.result);
    // What reached the client is what the server had buffered (plus kernel buffers): a fraction.
    expect(replies.length).toBeLessThan(frames * 128);
    expect(replies.length * replyBytes).toBeLessThan(64 * 1024 * 1024);
    const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().external;
    expect(heapAfter - heapBefore).toBeLessThan(128 * 1024 * 1024);
    await expectHealthy(server);
    await expectDrained(server);
  });

  it('300 subscriptions resumed from lastEventId 0 by a socket that stops reading are closed with 4008', async () => {
    await using server = await startTestServer({
      config: { limits: { maxSubscriptions: 300, rateLimitPerSec: 10_000, rateLimitBurst: 10_000 } },
    });
    for (let i = 0; i < 100; i++) await server.caller.notifications.send(alert(`n${i}`));
    const token = await server.token({ sub: 'mallory', workspaces: { acme: 'member' } });
    const raw = await openRaw(server.wsUrl, { params: { token } });
    raw.socket.pause();
    for (let f = 0; f < 3; f++) {
      raw.send(
        Array.from({ length: 100 }, (_, i) => ({
          id: f * 100 + i + 1,
          method: 'subscription',
          params: { path: 'notifications.onNotification', input: { workspaceId: 'acme' }, lastEventId: '0' },
        })),
      );
    }
    await slowDropSeen(server.url);
    raw.socket.resume();
    expect((await raw.closed).code).toBe(4008);
    const data = raw.messages.filter((m) => m.result?.type === 'data');
    // 300 × ~100 events of ~1 KB would be ~30 MB; the server stopped at its close mark.
    expect(data.length).toBeLessThan(300 * 100);
    await expectHealthy(server);
    await expectDrained(server);
  });
});
