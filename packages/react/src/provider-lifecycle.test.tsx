import { QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { cleanup, render, waitFor } from '@testing-library/react';
import { lazy, StrictMode, Suspense } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, NodeWebSocket, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';

afterEach(() => cleanup());

/** A WebSocket class that counts the sockets the SDK opens (each construction is one socket). */
function countingWebSocket() {
  const counter = { opened: 0 };
  class CountingWebSocket extends NodeWebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      counter.opened += 1;
    }
  }
  return { counter, WebSocket: CountingWebSocket };
}

function Live() {
  const { status } = usePresence('acme');
  const connection = useConnectionStatus();
  return (
    <p>
      {status}:{connection.status}
    </p>
  );
}

/** Records the QueryClient each render saw, and shows the notifications hook's status. */
function QueryClientProbe({ seen, notifications }: { seen: QueryClient[]; notifications?: boolean }) {
  seen.push(useQueryClient());
  return notifications ? <NotificationsStatus /> : null;
}

function NotificationsStatus() {
  const { status } = useNotifications('acme');
  return <p>{status}</p>;
}

describe('PulseProvider lifecycle', () => {
  it('a render discarded by Suspense (React.lazy child) opens no socket; unmount leaves none', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const { counter, WebSocket } = countingWebSocket();
    const LazyLive = lazy(async () => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      return { default: Live };
    });
    const view = render(
      <StrictMode>
        <Suspense fallback={<p>loading</p>}>
          <PulseProvider url={server.url} token={token} clientOptions={{ ...fastClientOptions, WebSocket }}>
            <LazyLive />
          </PulseProvider>
        </Suspense>
      </StrictMode>,
    );
    await waitFor(() => expect(view.container.textContent).toBe('live:connected'));
    expect(counter.opened).toBe(1);
    expect(server.stats().transport.connections).toBe(1);
    view.unmount();
    await waitFor(() => expect(server.stats().transport.connections).toBe(0));
    expect(counter.opened).toBe(1);
  });

  it('StrictMode double render and double effect: one socket, one subscription, none after unmount', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const { counter, WebSocket } = countingWebSocket();
    const view = render(
      <StrictMode>
        <PulseProvider url={server.url} token={token} clientOptions={{ ...fastClientOptions, WebSocket }}>
          <Live />
        </PulseProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(view.container.textContent).toBe('live:connected'));
    await waitFor(() =>
      expect(server.stats().transport).toMatchObject({
        connections: 1,
        subscriptionsByPath: { 'presence.onChange': 1 },
      }),
    );
    expect(counter.opened).toBe(1);
    view.unmount();
    await waitFor(() => expect(server.stats().transport).toMatchObject({ connections: 0, subscriptions: 0 }));
  });

  it("uses the app's QueryClient when the provider is inside the app's QueryClientProvider", async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const appClient = new QueryClient();
    const seen: QueryClient[] = [];
    const view = render(
      <QueryClientProvider client={appClient}>
        <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
          <QueryClientProbe seen={seen} notifications />
        </PulseProvider>
      </QueryClientProvider>,
    );
    await waitFor(() => expect(view.container.textContent).toBe('live'));
    expect(new Set(seen)).toEqual(new Set([appClient]));
    // Pulse's own queries live in the app's cache.
    const keys = appClient
      .getQueryCache()
      .getAll()
      .map((q) => JSON.stringify(q.queryKey));
    expect(keys.some((k) => k.includes('"counts"'))).toBe(true);
  });

  it('an explicit queryClient prop wins over the app one and is provided to the children', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const appClient = new QueryClient();
    const pulseClient = new QueryClient();
    const seen: QueryClient[] = [];
    render(
      <QueryClientProvider client={appClient}>
        <PulseProvider
          url={server.url}
          token={token}
          queryClient={pulseClient}
          clientOptions={fastClientOptions}
        >
          <QueryClientProbe seen={seen} />
        </PulseProvider>
      </QueryClientProvider>,
    );
    expect(new Set(seen)).toEqual(new Set([pulseClient]));
  });
});
