import { QueryClient } from '@tanstack/react-query';
import { act, cleanup, render, renderHook, waitFor } from '@testing-library/react';
import { type ReactNode, StrictMode, useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer, testClient } from '../test/pulse-test-server.js';
import { startProxy } from '@pulse/server/testing';
import { PulseProvider, usePulseClient, useViewer } from './PulseProvider.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { usePresence } from './usePresence.js';

afterEach(() => cleanup());

function Status() {
  const { status } = useConnectionStatus();
  const viewer = useViewer();
  return (
    <p>
      {status}:{viewer?.userId}
    </p>
  );
}

const tokenSetter = { current: (_token: string) => {} };

/** Bob's app: a provider whose `token` prop the test changes. */
function Bob({ url, initialToken }: { url: string; initialToken: string }) {
  const [token, setToken] = useState(initialToken);
  tokenSetter.current = setToken;
  return (
    <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
      <BobPresence />
    </PulseProvider>
  );
}

function BobPresence() {
  usePresence('acme');
  return null;
}

describe('PulseProvider', () => {
  it('owns one socket under StrictMode, reports connection states, and closes it on unmount', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const view = render(
      <StrictMode>
        <PulseProvider url={server.url} token={async () => token} clientOptions={fastClientOptions}>
          <Status />
        </PulseProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(view.container.textContent).toBe('connected:alice'));
    expect(server.stats().transport.connections).toBe(1);
    view.unmount();
    await waitFor(() => expect(server.stats().transport.connections).toBe(0));
  });

  it('uses a client and QueryClient you pass, and never closes your client', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    await using client = testClient(server.url, token);
    const queryClient = new QueryClient();
    const hook = renderHook(() => usePulseClient(), {
      wrapper: ({ children }: { children: ReactNode }) => (
        <PulseProvider client={client} token={token} queryClient={queryClient}>
          {children}
        </PulseProvider>
      ),
    });
    expect(hook.result.current).toBe(client);
    hook.unmount();
    expect(await client.trpc.presence.list.query({ workspaceId: 'acme' })).toEqual([]);
    expect(client.getConnectionState().status).toBe('connected');
  });

  it('re-announces presence after a dropped socket and picks up a new token prop on reconnect', async () => {
    await using server = await startServer();
    await using proxy = await startProxy({ port: server.port });
    const watcherToken = await server.token({ sub: 'watcher', workspaces: { acme: 'member' } });
    const watcher = renderHook(() => usePresence('acme', { announce: false }), {
      wrapper: ({ children }: { children: ReactNode }) => (
        <PulseProvider url={server.url} token={watcherToken} clientOptions={fastClientOptions}>
          {children}
        </PulseProvider>
      ),
    });
    const first = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const second = await server.token({ sub: 'bob', name: 'Bob B.', workspaces: { acme: 'member' } });
    render(<Bob url={proxy.url} initialToken={first} />);
    const bobSeen = () => watcher.result.current.users.find((u) => u.userId === 'bob');
    await waitFor(() => expect(bobSeen()?.name).toBe('Bob'));
    act(() => tokenSetter.current(second));
    proxy.drop();
    // The server removes Bob after the grace period, then the reconnected socket announces him again
    // (with the name from the new token).
    await waitFor(() => expect(bobSeen()?.name).toBe('Bob B.'));
    expect(bobSeen()?.status).toBe('online');
  });
});
