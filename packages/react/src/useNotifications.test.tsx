import { act, cleanup, render, renderHook, waitFor } from '@testing-library/react';
import { useQueryClient } from '@tanstack/react-query';
import { type ReactNode, StrictMode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { startProxy } from '@pulse/server/testing';
import { PulseProvider } from './PulseProvider.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useNotifications } from './useNotifications.js';

afterEach(() => cleanup());

function wrapper(url: string, token: string, strict = false) {
  return ({ children }: { children: ReactNode }) => {
    const provider = (
      <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
        {children}
      </PulseProvider>
    );
    return strict ? <StrictMode>{provider}</StrictMode> : provider;
  };
}

type Server = Awaited<ReturnType<typeof startServer>>;
const send = (server: Server, title: string, userId = 'bob') =>
  server.caller.notifications.send({
    workspaceId: 'acme',
    userId,
    type: 'mention',
    title,
    data: { platform: 'x', author: '@fan', text: `about ${title}` },
  });

function NotificationsApp() {
  const n = useNotifications('acme');
  return (
    <p>
      {n.status}:{n.items.length}:{n.unreadCount}
    </p>
  );
}

describe('useNotifications', () => {
  it('shows a notification sent by an admin live, and unreadCount moves in both tabs after markRead', async () => {
    await using server = await startServer();
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const tab1 = renderHook(() => useNotifications('acme'), { wrapper: wrapper(server.url, bobToken) });
    const tab2 = renderHook(() => useNotifications('acme'), { wrapper: wrapper(server.url, bobToken) });
    await waitFor(() => {
      expect(tab1.result.current.status).toBe('live');
      expect(tab2.result.current.status).toBe('live');
    });
    await waitFor(() => expect(server.stats().transport.subscriptionsByPath['notifications.onFeed']).toBe(2));
    expect(tab1.result.current).toMatchObject({ items: [], unreadCount: 0, hasMore: false, error: null });

    // An admin sends over HTTP with their own token; Bob sees it in both tabs.
    const adminToken = await server.token({ sub: 'ann', workspaces: { acme: 'admin' } });
    const response = await fetch(`${server.url}/trpc/notifications.send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        workspaceId: 'acme',
        userId: 'bob',
        type: 'approval',
        title: 'Post needs approval',
        data: { postId: 'p1', requestedBy: 'Ann', status: 'pending' },
      }),
    });
    expect(response.status).toBe(200);
    await send(server, 'second');
    for (const tab of [tab1, tab2]) {
      await waitFor(() => expect(tab.result.current.unreadCount).toBe(2));
      expect(tab.result.current.items.map((n) => n.title)).toEqual(['second', 'Post needs approval']);
      expect(tab.result.current.items[1]).toMatchObject({
        type: 'approval',
        data: { postId: 'p1', status: 'pending' },
        readAt: null,
      });
    }

    const first = tab1.result.current.items[1]!;
    act(() => tab1.result.current.markRead([first.id]));
    await waitFor(() => expect(tab2.result.current.unreadCount).toBe(1));
    await waitFor(() => expect(tab1.result.current.unreadCount).toBe(1));
    expect(tab2.result.current.items.find((n) => n.id === first.id)?.readAt).not.toBeNull();
    act(() => tab2.result.current.markAllRead());
    await waitFor(() => expect(tab1.result.current.unreadCount).toBe(0));
    await waitFor(() => expect(tab2.result.current.unreadCount).toBe(0));
    expect(tab1.result.current.items.every((n) => n.readAt !== null)).toBe(true);
    expect(await server.caller.notifications.unreadCount({ workspaceId: 'acme' })).toBe(0);
  });

  it('pages older notifications with fetchMore', async () => {
    await using server = await startServer();
    for (let i = 1; i <= 5; i++) await send(server, `n${i}`);
    const bob = renderHook(() => useNotifications('acme', { pageSize: 2 }), {
      wrapper: wrapper(server.url, await server.token({ sub: 'bob', workspaces: { acme: 'member' } })),
    });
    await waitFor(() => expect(bob.result.current.items.map((n) => n.title)).toEqual(['n5', 'n4']));
    expect(bob.result.current.hasMore).toBe(true);
    expect(bob.result.current.unreadCount).toBe(5);
    act(() => bob.result.current.fetchMore());
    await waitFor(() => expect(bob.result.current.items).toHaveLength(4));
    act(() => bob.result.current.fetchMore());
    await waitFor(() =>
      expect(bob.result.current.items.map((n) => n.title)).toEqual(['n5', 'n4', 'n3', 'n2', 'n1']),
    );
    await waitFor(() => expect(bob.result.current.hasMore).toBe(false));
  });

  it('a dropped connection resumes without losing or doubling a notification', async () => {
    await using server = await startServer();
    await using proxy = await startProxy({ port: server.port });
    const bob = renderHook(() => ({ n: useNotifications('acme'), connection: useConnectionStatus() }), {
      wrapper: wrapper(proxy.url, await server.token({ sub: 'bob', workspaces: { acme: 'member' } })),
    });
    await waitFor(() => expect(bob.result.current.n.status).toBe('live'));
    await send(server, 'before');
    await waitFor(() => expect(bob.result.current.n.items.map((n) => n.title)).toEqual(['before']));

    // Proof that the gap is filled by resuming the stream (lastEventId), not by refetching the list.
    const listCalls = vi.spyOn(server.services.notifications, 'list');
    proxy.refuse(true);
    proxy.drop();
    await waitFor(() => expect(bob.result.current.connection.status).toBe('reconnecting'));
    expect(bob.result.current.n.status).toBe('reconnecting');
    await send(server, 'while-away-1');
    await send(server, 'while-away-2');
    proxy.refuse(false);

    await waitFor(() => expect(bob.result.current.connection.status).toBe('connected'));
    await waitFor(() =>
      expect(bob.result.current.n.items.map((n) => n.title)).toEqual([
        'while-away-2',
        'while-away-1',
        'before',
      ]),
    );
    await send(server, 'after');
    await waitFor(() => expect(bob.result.current.n.items).toHaveLength(4));
    expect(bob.result.current.n.items.map((n) => n.title)).toEqual([
      'after',
      'while-away-2',
      'while-away-1',
      'before',
    ]);
    expect(new Set(bob.result.current.n.items.map((n) => n.id)).size).toBe(4);
    expect(bob.result.current.n.unreadCount).toBe(4);
    expect(bob.result.current.n.status).toBe('live');
    expect(listCalls).not.toHaveBeenCalled();
  });

  it('StrictMode leaves one socket and one live notification subscription', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const view = render(<NotificationsApp />, { wrapper: wrapper(server.url, token, true) });
    await waitFor(() => expect(view.container.textContent).toBe('live:0:0'));
    await send(server, 'hello');
    await waitFor(() => expect(view.container.textContent).toBe('live:1:1'));
    expect(server.stats().transport).toMatchObject({
      connections: 1,
      subscriptions: 1,
      subscriptionsByPath: { 'notifications.onFeed': 1 },
    });
  });
});

const selectLength = (items: unknown[]) => items.length;

/** Counts its renders; shows the number of notifications (selected) and the counts. */
function NotificationCounter({ renders }: { renders: { count: number } }) {
  renders.count++;
  const n = useNotifications('acme', { status: 'all', select: selectLength });
  return (
    <p data-testid="counter">
      {n.status}:{n.items}:{n.unreadCount}:{n.unseenCount}
    </p>
  );
}

function NotificationWatcher() {
  const n = useNotifications('acme', { status: 'all' });
  return (
    <p data-testid="watcher">
      {n.items
        .map((i) => `${i.title}/${i.readAt ? 'read' : 'unread'}/${i.archivedAt ? 'archived' : 'kept'}`)
        .join(',')}
    </p>
  );
}

describe('useNotifications select and enabled', () => {
  it('a component selecting items.length re-renders when the length changes, not when an item changes in place', async () => {
    await using server = await startServer();
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    await send(server, 'first');
    const renders = { count: 0 };
    const view = render(
      <PulseProvider url={server.url} token={bobToken} clientOptions={fastClientOptions}>
        <NotificationCounter renders={renders} />
        <NotificationWatcher />
      </PulseProvider>,
    );
    // Another tab marks it read: the change reaches this provider only through the feed.
    const otherTab = renderHook(() => useNotifications('acme'), { wrapper: wrapper(server.url, bobToken) });
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:1:1:1'));
    await waitFor(() => expect(otherTab.result.current.items).toHaveLength(1));
    const firstId = otherTab.result.current.items[0]!.id;
    act(() => otherTab.result.current.markRead([firstId]));
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('first/read/kept'));
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:1:0:0'));
    const before = renders.count;

    // Archiving a read item: it changes in place (archivedAt), the length and the counts stay.
    act(() => otherTab.result.current.archive([firstId]));
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('first/read/archived'));
    expect(renders.count).toBe(before);

    // A new notification changes the length: the counter re-renders.
    await send(server, 'second');
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:2:1:1'));
    expect(renders.count).toBeGreaterThan(before);
  });

  it('enabled: false opens no feed subscription and fetches no list or counts', async () => {
    await using server = await startServer();
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    await send(server, 'first');
    const view = renderHook(
      ({ enabled }) => ({
        paused: useNotifications('acme', { enabled }),
        // Another live hook on the same connection: once it is live, the paused one had its chance.
        status: useConnectionStatus(),
        queryClient: useQueryClient(),
      }),
      { wrapper: wrapper(server.url, bobToken), initialProps: { enabled: false } },
    );
    await waitFor(() => expect(view.result.current.status.status).toBe('connected'));
    expect(server.stats().transport.subscriptionsByPath['notifications.onFeed'] ?? 0).toBe(0);
    const fetched = view.result.current.queryClient
      .getQueryCache()
      .getAll()
      .filter((q) => q.state.dataUpdatedAt > 0 || q.state.fetchStatus !== 'idle');
    expect(fetched.map((q) => q.queryKey)).toEqual([]);
    expect(view.result.current.paused.items).toEqual([]);

    view.rerender({ enabled: true });
    await waitFor(() => expect(view.result.current.paused.items.map((n) => n.title)).toEqual(['first']));
    expect(server.stats().transport.subscriptionsByPath['notifications.onFeed']).toBe(1);
  });
});
