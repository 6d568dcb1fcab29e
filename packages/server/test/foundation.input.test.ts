import type { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../src/router.js';
import { collect, connectClient, startTestServer } from './support/vitest.js';

type Frame = { id: unknown; result?: { type: string }; error?: { message: string; data: { code: string } } };

/** A raw, authenticated socket speaking tRPC's wire format. */
async function rawSocket(wsUrl: string, token: string) {
  const socket = new WebSocket(`${wsUrl}?connectionParams=1`);
  const frames: Frame[] = [];
  let closeCode: number | null = null;
  socket.on('message', (raw) => {
    const text = raw.toString();
    if (text !== 'PING' && text !== 'PONG') frames.push(JSON.parse(text));
  });
  socket.on('close', (code) => {
    closeCode = code;
  });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
  return { socket, frames, closed: () => closeCode };
}

describe('malformed input', () => {
  it('answers each bad frame with an error (or closes that socket only) and keeps serving everyone', async () => {
    await using server = await startTestServer({
      config: { limits: { maxBatch: 20, maxSubscriptions: 50 } },
    });
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    await using healthy = connectClient(server, token);
    const seen = collect<unknown>();
    healthy.trpc.presence.onChange.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));

    const raw = await rawSocket(server.wsUrl, token);
    const expectError = async (send: () => void, code: string, message: RegExp | string) => {
      const before = raw.frames.length;
      send();
      await vi.waitFor(() => expect(raw.frames.length).toBeGreaterThan(before));
      const frame = raw.frames.at(-1)!;
      expect(frame.error?.data.code).toBe(code);
      if (typeof message === 'string') expect(frame.error?.message).toBe(message);
      else expect(frame.error?.message).toMatch(message);
      return frame;
    };

    // The JSON parser's own message, as the stock adapter sends it.
    await expectError(() => raw.socket.send('{"id":1,"method":'), 'PARSE_ERROR', /JSON/);
    await expectError(
      () =>
        raw.socket.send(
          JSON.stringify({ id: 2, method: 'query', params: { path: 'nope.missing', input: {} } }),
        ),
      'NOT_FOUND',
      /No "query"-procedure on path "nope.missing"/,
    );
    const wrongTypes = await expectError(
      () =>
        raw.socket.send(
          JSON.stringify({
            id: 3,
            method: 'query',
            params: { path: 'presence.list', input: { workspaceId: 42 } },
          }),
        ),
      'BAD_REQUEST',
      /expected string/,
    );
    expect(wrongTypes.id).toBe(3);
    await expectError(
      // Thousands of requests in one frame (small enough to pass the 64 KiB frame limit).
      () =>
        raw.socket.send(
          JSON.stringify(
            Array.from({ length: 1200 }, (_, i) => ({ id: i, method: 'query', params: { path: 'x' } })),
          ),
        ),
      'PAYLOAD_TOO_LARGE',
      'Batch of 1200 requests exceeds the limit of 20',
    );
    await expectError(
      () => raw.socket.send(JSON.stringify({ id: 7, method: 'explode', params: {} })),
      'PARSE_ERROR',
      /Invalid request/,
    );

    // A thousand subscriptions on one socket: the first 50 start, every other one is refused.
    const subs = Array.from({ length: 1000 }, (_, i) => ({
      id: 100 + i,
      method: 'subscription',
      params: { path: 'presence.onChange', input: { workspaceId: 'acme' } },
    }));
    for (let i = 0; i < subs.length; i += 20) raw.socket.send(JSON.stringify(subs.slice(i, i + 20)));
    await vi.waitFor(() =>
      expect(raw.frames.filter((f) => f.error?.data.code === 'TOO_MANY_REQUESTS')).toHaveLength(950),
    );
    await vi.waitFor(() => expect(raw.frames.filter((f) => f.result?.type === 'started')).toHaveLength(50));
    expect(server.stats().transport.subscriptionsByPath['presence.onChange']).toBe(51);

    // An oversize frame closes that socket with 1009 only.
    raw.socket.send('x'.repeat(70 * 1024));
    await vi.waitFor(() => expect(raw.closed()).toBe(1009));
    await vi.waitFor(() => expect(server.stats().transport.subscriptionsByPath['presence.onChange']).toBe(1));

    // Everyone else is still served.
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online' });
    await vi.waitFor(() => expect(seen.items).toContainEqual(expect.objectContaining({ type: 'join' })));
    const bad = await bob.trpc.presence.set
      // @ts-expect-error wrong input type on purpose
      .mutate({ workspaceId: 'acme', status: 'sleeping' })
      .catch((e: unknown) => e);
    expect((bad as TRPCClientError<AppRouter>).data?.code).toBe('BAD_REQUEST');
    expect((bad as TRPCClientError<AppRouter> & { data: { issues: unknown[] } }).data.issues).toEqual([
      expect.objectContaining({ path: ['status'], code: 'invalid_value' }),
    ]);
  });
});
