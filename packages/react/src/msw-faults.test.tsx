import { cleanup, renderHook, waitFor } from '@testing-library/react';
import { HttpResponse, http, ws } from 'msw';
import { setupServer } from 'msw/node';
import type { ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PulseProvider } from './PulseProvider.js';
import type { RouterOutputs } from './trpc.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';

// Faults that are awkward to stage against a real server, played by msw over jsdom's WebSocket.
const BASE = 'http://pulse.test';
const socket = ws.link(`${BASE.replace('http', 'ws')}/trpc`);
const server = setupServer();

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  cleanup();
  server.resetHandlers();
});
afterAll(() => server.close());

const b64 = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, '');
const TOKEN = `${b64({ alg: 'HS256' })}.${b64({ sub: 'bob', name: 'Bob' })}.sig`;

const wrapper = ({ children }: { children: ReactNode }) => (
  <PulseProvider
    url={BASE}
    token={TOKEN}
    clientOptions={{
      retry: { baseMs: 10, maxMs: 30 },
      keepAlive: { intervalMs: 100, pongTimeoutMs: 100 },
      authConfirmMs: 100,
    }}
  >
    {children}
  </PulseProvider>
);

type Notification = RouterOutputs['notifications']['list']['items'][number];
const notification = (id: string, title: string): Notification => ({
  id,
  eventId: id,
  workspaceId: 'acme',
  userId: 'bob',
  type: 'alert',
  title,
  body: null,
  priority: 'normal',
  createdAt: new Date().toISOString(),
  readAt: null,
  data: { alertType: 'system', severity: 'info', message: title },
});

/** Answers tRPC batched HTTP queries from a map of path → result. */
function trpcHttp(results: Record<string, () => unknown>, calls: string[]) {
  return http.get(`${BASE}/trpc/:paths`, ({ params }) => {
    const paths = String(params.paths).split(',');
    calls.push(...paths);
    return HttpResponse.json(paths.map((path) => ({ result: { data: results[path]!() } })));
  });
}

interface Frame {
  id?: number;
  method?: string;
  params?: { path: string; input: unknown };
}

describe('faults over a mocked socket', () => {
  it('a reset event refetches the list and the counts', async () => {
    const calls: string[] = [];
    let stored = [notification('1', 'old')];
    let sendReset: (() => void) | null = null;
    server.use(
      trpcHttp(
        {
          'notifications.list': () => ({ items: stored, nextCursor: null }),
          'notifications.counts': () => ({
            unseen: stored.filter((n) => !n.seenAt).length,
            unread: stored.filter((n) => !n.readAt).length,
          }),
        },
        calls,
      ),
      socket.addEventListener('connection', ({ client }) => {
        client.addEventListener('message', (event) => {
          if (event.data === 'PING') return client.send('PONG');
          const frame = JSON.parse(String(event.data)) as Frame;
          if (frame.method !== 'subscription') return;
          client.send(JSON.stringify({ id: frame.id, result: { type: 'started' } }));
          // The test decides when the server says the resume point is gone.
          sendReset = () => {
            stored = [notification('9', 'newer'), notification('8', 'new'), ...stored];
            client.send(
              JSON.stringify({
                id: frame.id,
                result: {
                  type: 'data',
                  id: '9',
                  data: {
                    id: '9',
                    data: { type: 'reset', workspaceId: 'acme', at: new Date().toISOString(), headId: '9' },
                  },
                },
              }),
            );
          };
        });
      }),
    );
    const view = renderHook(() => useNotifications('acme'), { wrapper });
    await waitFor(() => expect(view.result.current.items.map((n) => n.title)).toEqual(['old']));
    expect(calls.filter((c) => c === 'notifications.list')).toHaveLength(1);
    await waitFor(() => expect(sendReset).not.toBeNull());
    sendReset!();
    await waitFor(() =>
      expect(view.result.current.items.map((n) => n.title)).toEqual(['newer', 'new', 'old']),
    );
    expect(view.result.current.unreadCount).toBe(3);
    expect(calls.filter((c) => c === 'notifications.list')).toHaveLength(2);
    expect(calls.filter((c) => c === 'notifications.counts')).toHaveLength(2);
  });

  it('a server that refuses the token (close 4401) puts the hook in the AUTH error state until accepted', async () => {
    let connections = 0;
    let refuse = true;
    const bob = {
      userId: 'bob',
      name: 'Bob',
      status: 'online',
      page: null,
      activity: null,
      since: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    };
    server.use(
      socket.addEventListener('connection', ({ client }) => {
        connections += 1;
        client.addEventListener('message', (event) => {
          // Like Pulse: the token arrives in the first frame, is refused, and the socket closes with 4401.
          // NOTE: closed on the next tick, as over a network: msw delivers synchronously, and a close
          // inside the client's own send() lands in a window where tRPC's wsClient drops the reconnect.
          if (refuse) return void setTimeout(() => client.close(4401, 'Token refused'), 0);
          if (event.data === 'PING') return client.send('PONG');
          const frames = [JSON.parse(String(event.data)) as Frame | Frame[]].flat();
          for (const frame of frames) {
            if (frame.method === 'subscription') {
              client.send(JSON.stringify({ id: frame.id, result: { type: 'started' } }));
              const snapshot = { type: 'snapshot', workspaceId: 'acme', at: bob.since, users: [bob] };
              client.send(JSON.stringify({ id: frame.id, result: { type: 'data', data: snapshot } }));
            } else if (frame.method === 'mutation') {
              client.send(JSON.stringify({ id: frame.id, result: { type: 'data', data: bob } }));
            }
          }
        });
      }),
    );
    const view = renderHook(() => ({ presence: usePresence('acme'), connection: useConnectionStatus() }), {
      wrapper,
    });
    await waitFor(() => expect(view.result.current.presence.status).toBe('error'));
    expect(view.result.current.presence.error?.context).toMatchObject({ type: 'AUTH', code: 'UNAUTHORIZED' });
    expect(view.result.current.connection.error?.context.type).toBe('AUTH');
    // It keeps retrying (with a fresh token each time), staying in the error state meanwhile.
    await waitFor(() => expect(connections).toBeGreaterThanOrEqual(3));
    expect(view.result.current.presence.status).toBe('error');
    expect(view.result.current.presence.users).toEqual([]);

    // The server accepts the (fresh) token again: the subscription is restarted and goes live.
    refuse = false;
    await waitFor(() => expect(view.result.current.presence.status).toBe('live'));
    expect(view.result.current.presence.error).toBeNull();
    expect(view.result.current.presence.users.map((u) => u.userId)).toEqual(['bob']);
    expect(view.result.current.connection).toMatchObject({ status: 'connected', error: null });
  });

  it('a stalled socket (no pong, no data) is detected by keep-alive and replaced', async () => {
    let connections = 0;
    const pings: number[] = [];
    server.use(
      socket.addEventListener('connection', ({ client }) => {
        connections += 1;
        const n = connections;
        client.addEventListener('message', (event) => {
          if (event.data === 'PING') pings.push(n);
          // Never answers: not the PING, not the subscription.
        });
      }),
    );
    const view = renderHook(() => ({ presence: usePresence('acme'), connection: useConnectionStatus() }), {
      wrapper,
    });
    expect(view.result.current.presence.status).toBe('connecting');
    await waitFor(() => expect(pings).toContain(1));
    await waitFor(() => expect(connections).toBeGreaterThanOrEqual(2));
    // The stalled first socket was given up on: the client reconnected rather than hanging.
    expect(view.result.current.presence.users).toEqual([]);
    expect(['connecting', 'reconnecting']).toContain(view.result.current.presence.status);
    expect(view.result.current.presence.error).toBeNull();
  });
});
