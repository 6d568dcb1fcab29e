import { act, cleanup, render, waitFor } from '@testing-library/react';
import { Profiler } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer, testClient } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useNotifications } from './useNotifications.js';
import { usePresence } from './usePresence.js';

afterEach(() => cleanup());

const dotIds = Array.from({ length: 120 }, (_, i) => `dot-${i}`);
const renders = { count: 0, all: 0 };

/** How many users are online, and nothing else: re-renders only when that number changes. */
function OnlineCount() {
  const { users } = usePresence('acme', { announce: false, select: (list) => list.length });
  return <b>{users}</b>;
}

function OnlinePages() {
  const { users } = usePresence('acme', { announce: false });
  return <s>{users.map((u) => u.page).join(',')}</s>;
}

function PausedPresence() {
  const { status } = usePresence('acme', { enabled: false });
  return <p>{status}</p>;
}

function LiveNotifications() {
  const { status } = useNotifications('acme');
  return <p>{status}</p>;
}

function Bell({ id }: { id: string }) {
  const { unreadCount, items, status } = useNotifications('acme');
  return (
    <p id={id}>
      {status}:{unreadCount}:{items.length}
    </p>
  );
}

function Dot({ announce }: { announce: boolean }) {
  const { users, status, error } = usePresence('acme', { announce });
  return (
    <i data-status={status} data-error={error?.context.code ?? ''}>
      {users.length}
    </i>
  );
}

describe('one server subscription per procedure and input', () => {
  it('120 presence hooks share one subscription and one store: no TOO_MANY_REQUESTS', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', name: 'Alice', workspaces: { acme: 'member' } });
    const view = render(
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        {dotIds.map((id) => (
          <Dot key={id} announce={id === 'dot-0'} />
        ))}
      </PulseProvider>,
    );
    const dots = () => [...view.container.querySelectorAll('i')];
    await waitFor(() =>
      expect(dots().every((d) => d.dataset.status === 'live' && d.textContent === '1')).toBe(true),
    );
    expect(dots()).toHaveLength(120);
    expect(dots().filter((d) => d.dataset.error !== '')).toEqual([]);
    expect(server.stats().transport).toMatchObject({
      connections: 1,
      subscriptionsByPath: { 'presence.onChange': 1 },
    });
    // The last reader leaving ends the one subscription.
    view.unmount();
    await waitFor(() => expect(server.stats().transport).toMatchObject({ connections: 0, subscriptions: 0 }));
  });

  it('a selector re-renders its component only when the selected value changes', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'watcher', workspaces: { acme: 'member' } });
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    await using bob = testClient(server.url, bobToken);
    renders.count = 0;
    renders.all = 0;
    const view = render(
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        <Profiler id="count" onRender={() => (renders.count += 1)}>
          <OnlineCount />
        </Profiler>
        <Profiler id="all" onRender={() => (renders.all += 1)}>
          <OnlinePages />
        </Profiler>
      </PulseProvider>,
    );
    await bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page: '/one' });
    await waitFor(() => expect(view.container.querySelector('s')?.textContent).toBe('/one'));
    expect(view.container.querySelector('b')?.textContent).toBe('1');
    const before = { ...renders };
    // Bob moves between pages: the list changes, its length does not.
    for (const page of ['/two', '/three']) {
      await act(() => bob.trpc.presence.set.mutate({ workspaceId: 'acme', status: 'online', page }));
      await waitFor(() => expect(view.container.querySelector('s')?.textContent).toBe(page));
    }
    expect(renders.all - before.all).toBeGreaterThanOrEqual(2);
    expect(renders.count - before.count).toBe(0);
  });

  it('enabled: false opens no subscription', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const view = render(
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        <PausedPresence />
        <LiveNotifications />
      </PulseProvider>,
    );
    // The socket is up and another hook's subscription live: the paused one never subscribed.
    await waitFor(() => expect(view.container.textContent).toBe('connectinglive'));
    expect(server.stats().transport.subscriptionsByPath).toEqual({ 'notifications.onFeed': 1 });
  });

  it('notification hooks share one subscription; each event is applied to the cache once', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const adminToken = await server.token({ sub: 'ada', workspaces: { acme: 'admin' } });
    await using admin = testClient(server.url, adminToken);
    const view = render(
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        <Bell id="a" />
        <Bell id="b" />
        <Bell id="c" />
      </PulseProvider>,
    );
    const text = () => [...view.container.querySelectorAll('p')].map((p) => p.textContent);
    await waitFor(() => expect(text()).toEqual(['live:0:0', 'live:0:0', 'live:0:0']));
    expect(server.stats().transport.subscriptionsByPath).toEqual({ 'notifications.onFeed': 1 });
    await admin.trpc.notifications.send.mutate({
      workspaceId: 'acme',
      userId: 'bob',
      type: 'alert',
      title: 'Once',
      data: { alertType: 'system', severity: 'info', message: 'once' },
    });
    // Three readers, one event applied once: the count is 1, not 3.
    await waitFor(() => expect(text()).toEqual(['live:1:1', 'live:1:1', 'live:1:1']));
  });
});
