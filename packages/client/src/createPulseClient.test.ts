import { type MintOptions, mintToken, type PulseServer, startPulseServer } from '@pulse/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { type ConnectionStatus, createPulseClient, fullJitterBackoff, type PulseClient } from './index.js';

const SECRET = 'client-test-secret-long-enough-for-hs256-0123456789';
const NodeWebSocket = WebSocket;

async function startServer(port = 0) {
  return startPulseServer({
    sqliteFile: ':memory:',
    config: {
      port,
      host: '127.0.0.1',
      logLevel: 'silent',
      jwt: { secret: SECRET },
      presence: { graceMs: 50, ttlMs: 5_000 },
    },
  });
}
const token = (server: PulseServer, opts: MintOptions) => mintToken(server.config.jwt, opts);

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close().catch(() => {});
});

describe('fullJitterBackoff', () => {
  it('draws in [0, min(cap, base·2^attempt)] from the injected random', () => {
    const backoff = fullJitterBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0.999999 });
    expect([0, 1, 2, 3, 4, 10].map(backoff)).toEqual([99, 199, 399, 799, 999, 999]);
    expect(fullJitterBackoff({ baseMs: 100, random: () => 0 })(5)).toBe(0);
    const half = fullJitterBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0.5 });
    expect([0, 3].map(half)).toEqual([50, 400]);
  });
});

describe('createPulseClient', () => {
  it('reconnects after a server restart with jittered delays and a fresh token each time', async () => {
    let server = await startServer();
    open.push({ close: () => server.close({ graceMs: 0 }) });
    const port = server.port;
    const jwt = server.config.jwt;
    const tokenCalls: number[] = [];
    const randomCalls: number[] = [];
    const client = createPulseClient({
      url: server.url,
      WebSocket: NodeWebSocket,
      token: async () => {
        tokenCalls.push(Date.now());
        return mintToken(jwt, { sub: 'alice', workspaces: { acme: 'admin' } });
      },
      retry: {
        baseMs: 40,
        maxMs: 200,
        random: () => {
          randomCalls.push(0.5);
          return 0.5;
        },
      },
    });
    open.push(client);
    const statuses: ConnectionStatus[] = [];
    client.onConnectionState((s) => {
      if (statuses.at(-1) !== s.status) statuses.push(s.status);
    });
    const seen: string[] = [];
    const sub = client.trpc.presence.onChange.subscribe(
      { workspaceId: 'acme' },
      { onData: (event) => seen.push(event.type) },
    );
    await vi.waitFor(() => expect(seen).toEqual(['snapshot']));
    expect(client.getConnectionState()).toMatchObject({ status: 'connected', error: null, attempt: 0 });
    const tokensBefore = tokenCalls.length;

    await server.close({ graceMs: 0 });
    await vi.waitFor(() => expect(client.getConnectionState().status).toBe('reconnecting'));
    // Let a few attempts fail against the closed port: each is a jittered delay drawn from `random`.
    await vi.waitFor(() => expect(randomCalls.length).toBeGreaterThanOrEqual(2));
    server = await startServer(port);
    await vi.waitFor(() => expect(client.getConnectionState().status).toBe('connected'));
    // The subscription resumed by itself (a fresh snapshot from the new node).
    await vi.waitFor(() => expect(seen).toEqual(['snapshot', 'snapshot']));
    expect(client.getConnectionState()).toMatchObject({ error: null, attempt: 0 });
    // A fresh token for the new connection (connectionParams re-evaluated on reconnect).
    expect(tokenCalls.length).toBeGreaterThan(tokensBefore);
    expect(statuses).toEqual(['connected', 'reconnecting', 'connected']);
    sub.unsubscribe();
    await client.close();
    expect(client.getConnectionState().status).toBe('offline');
  });

  it('reports a refused token as an AUTH error while retrying, and recovers with a valid one', async () => {
    const server = await startServer();
    open.push({ close: () => server.close({ graceMs: 0 }) });
    let valid = false;
    let calls = 0;
    const good = await token(server, { sub: 'alice', workspaces: { acme: 'admin' } });
    const client = createPulseClient({
      url: server.url,
      WebSocket: NodeWebSocket,
      token: () => {
        calls += 1;
        return valid ? good : 'not-a-jwt';
      },
      retry: { baseMs: 20, maxMs: 50 },
      authConfirmMs: 300,
    });
    open.push(client);
    await vi.waitFor(() =>
      expect(client.getConnectionState().error?.context).toMatchObject({
        type: 'AUTH',
        code: 'UNAUTHORIZED',
      }),
    );
    // Once refused, retries keep the AUTH error and never claim `connected` (no flapping).
    const statuses: ConnectionStatus[] = [];
    client.onConnectionState((s) => statuses.push(s.status));
    const callsAtFirstRefusal = calls;
    await vi.waitFor(() => expect(calls).toBeGreaterThan(callsAtFirstRefusal + 2));
    expect(statuses).not.toContain('connected');
    expect(client.getConnectionState().error?.context.type).toBe('AUTH');
    const callsWhileRefused = calls;
    valid = true;
    await vi.waitFor(() =>
      expect(client.getConnectionState()).toMatchObject({ status: 'connected', error: null }),
    );
    expect(calls).toBeGreaterThan(callsWhileRefused);
    expect(await client.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
  });

  it('sends the listed mutation paths over the socket (presence tied to that socket)', async () => {
    const server = await startServer();
    open.push({ close: () => server.close({ graceMs: 0 }) });
    const alice = await token(server, { sub: 'alice', workspaces: { acme: 'admin' } });
    const overWs = createPulseClient({
      url: server.url,
      token: alice,
      WebSocket: NodeWebSocket,
      wsMutations: ['presence.set'],
    });
    open.push(overWs);
    await overWs.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    expect(server.services.presence.stats().connections).toBe(1);
    await overWs.close();
    // Over the socket, presence ends with the socket (after the grace), not after a TTL.
    await vi.waitFor(async () =>
      expect(await server.caller.presence.list({ workspaceId: 'acme' })).toEqual([]),
    );

    const overHttp = createPulseClient({ url: server.url, token: alice, WebSocket: NodeWebSocket });
    open.push(overHttp as PulseClient);
    await overHttp.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    expect(server.services.presence.stats().connections).toBe(0);
  });
});

describe('createPulseClient({ lazy: true })', () => {
  it('opens no socket until a subscription or connect(); queries go over HTTP; closed means closed', async () => {
    const server = await startServer();
    open.push(server);
    const alice = await token(server, { sub: 'alice', workspaces: { acme: 'member' } });
    let sockets = 0;
    class CountingWebSocket extends NodeWebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets += 1;
      }
    }
    const client = createPulseClient({
      url: server.url,
      token: alice,
      WebSocket: CountingWebSocket,
      lazy: true,
    });
    open.push(client);
    // An HTTP query needs no socket.
    expect(await client.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
    expect(sockets).toBe(0);
    expect(server.stats().transport.connections).toBe(0);
    // The first subscription opens the one socket.
    const events: string[] = [];
    const started = new Promise<void>((resolve) => {
      const sub = client.trpc.presence.onChange.subscribe(
        { workspaceId: 'acme' },
        { onStarted: () => resolve(), onData: (event) => events.push(event.type) },
      );
      open.push({ close: async () => sub.unsubscribe() });
    });
    await started;
    client.connect(); // already open: no second socket
    expect(sockets).toBe(1);
    expect(server.stats().transport.connections).toBe(1);
    await client.close();
    await vi.waitFor(() => expect(server.stats().transport.connections).toBe(0));
    // After close, a WebSocket operation fails instead of opening a socket.
    const closed = createPulseClient({
      url: server.url,
      token: alice,
      WebSocket: CountingWebSocket,
      lazy: true,
    });
    await closed.close();
    closed.connect();
    const error = await new Promise<unknown>((resolve) => {
      closed.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, { onError: resolve });
    });
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe('Pulse client is closed');
    expect(sockets).toBe(1);
  });
});

describe('createPulseClient({ openTimeoutMs })', () => {
  it('gives up a node that takes the TCP connection but never answers the upgrade, and moves on', async () => {
    // A listener that accepts and then says nothing: without an open timeout the client would wait
    // for good (tRPC's wsClient has none).
    const { createServer } = await import('node:net');
    const held: Array<import('node:net').Socket> = [];
    const mute = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    open.push({
      close: async () => {
        for (const socket of held) socket.destroy();
        await new Promise<void>((resolve) => mute.close(() => resolve()));
      },
    });
    const port = (mute.address() as import('node:net').AddressInfo).port;
    const b = await startServer();
    open.push({ close: () => b.close({ graceMs: 0 }) });
    const client = createPulseClient({
      url: [`http://127.0.0.1:${port}`, b.url],
      WebSocket: NodeWebSocket,
      token: () => mintToken(b.config.jwt, { sub: 'alice', workspaces: { acme: 'member' } }),
      openTimeoutMs: 300,
      // random() = 0: the mute node is the first choice, and jitter is 0.
      retry: { baseMs: 20, maxMs: 50, random: () => 0 },
    });
    open.push(client);
    const seen: string[] = [];
    const sub = client.trpc.presence.onChange.subscribe(
      { workspaceId: 'acme' },
      { onData: (event) => seen.push(event.type) },
    );
    await vi.waitFor(() => expect(seen).toEqual(['snapshot']), { timeout: 10_000 });
    // The mute node really was tried first (its socket is held open there), then given up.
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(b.stats().transport.connections).toBe(1);
    expect(client.getConnectionState()).toMatchObject({ status: 'connected', error: null });
    sub.unsubscribe();
  });
});

describe('createPulseClient({ url: [a, b] })', () => {
  it('moves to the next node when its node goes away: the subscription resumes there and HTTP follows it', async () => {
    const a = await startServer();
    const b = await startServer();
    open.push({ close: () => b.close({ graceMs: 0 }) });
    open.push({ close: () => a.close({ graceMs: 0 }) });
    const client = createPulseClient({
      url: [a.url, b.url],
      WebSocket: NodeWebSocket,
      token: () => mintToken(b.config.jwt, { sub: 'alice', workspaces: { acme: 'admin' } }),
      // random() = 0: the first choice is the first URL, and jitter is 0.
      retry: { baseMs: 20, maxMs: 50, random: () => 0 },
    });
    open.push(client);
    const seen: string[] = [];
    const sub = client.trpc.presence.onChange.subscribe(
      { workspaceId: 'acme' },
      { onData: (event) => seen.push(event.type) },
    );
    await vi.waitFor(() => expect(seen).toEqual(['snapshot']));
    expect(a.stats().transport.connections).toBe(1);
    expect(b.stats().transport.connections).toBe(0);

    await a.close({ graceMs: 0 });
    // The socket fails over to b and the subscription starts again there (a fresh snapshot).
    await vi.waitFor(() => expect(seen).toEqual(['snapshot', 'snapshot']), { timeout: 10_000 });
    expect(b.stats().transport.connections).toBe(1);
    expect(client.getConnectionState()).toMatchObject({ status: 'connected', error: null });
    // HTTP goes to the node the socket is on: a is closed, so this answer comes from b.
    await client.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    expect((await b.caller.presence.list({ workspaceId: 'acme' })).map((p) => p.userId)).toEqual(['alice']);
    sub.unsubscribe();
  });
});
