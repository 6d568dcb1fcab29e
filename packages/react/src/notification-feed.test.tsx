import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  fastClientOptions,
  startServer,
  mentionBob,
  type TestPulseServer,
} from '../test/pulse-test-server.js';
import { startProxy } from '@pulse/server/testing';
import { PulseProvider } from './PulseProvider.js';
import { useNotificationPreferences } from './useNotificationPreferences.js';
import { useNotifications } from './useNotifications.js';

afterEach(() => cleanup());

const wrapper =
  (url: string, token: string) =>
  ({ children }: { children: ReactNode }) => (
    <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
      {children}
    </PulseProvider>
  );

type Server = TestPulseServer;
const mention = mentionBob;
const review = (server: Server, title: string) =>
  server.caller.notifications.send({
    workspaceId: 'acme',
    userId: 'bob',
    type: 'review',
    title,
    data: { platform: 'google', author: 'Kim', rating: 2 },
  });

/** One tab: the default list, the archived list and the preferences, in one provider (one socket). */
function useTab() {
  return {
    inbox: useNotifications('acme'),
    archived: useNotifications('acme', { status: 'archived' }),
    unread: useNotifications('acme', { status: 'unread' }),
    prefs: useNotificationPreferences('acme'),
  };
}

describe('useNotifications feed (seen / read / archived)', () => {
  it('seen, read, archive and unarchive in one tab move items and counts in the other', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const tab1 = renderHook(useTab, { wrapper: wrapper(server.url, token) });
    const tab2 = renderHook(useTab, { wrapper: wrapper(server.url, token) });
    for (const tab of [tab1, tab2])
      await waitFor(() => {
        expect(tab.result.current.inbox.status).toBe('live');
        expect(tab.result.current.archived.status).toBe('live');
        expect(tab.result.current.prefs.status).toBe('live');
      });
    // Every hook of a tab shares one feed subscription: two tabs, two.
    expect(server.stats().transport.subscriptionsByPath['notifications.onFeed']).toBe(2);

    await mention(server, 'm1');
    await mention(server, 'm2');
    await mention(server, 'm3');
    for (const tab of [tab1, tab2])
      await waitFor(() => {
        expect(tab.result.current.inbox.items.map((n) => n.title)).toEqual(['m3', 'm2', 'm1']);
        expect(tab.result.current.inbox.unseenCount).toBe(3);
        expect(tab.result.current.inbox.unreadCount).toBe(3);
      });

    // "Mark all seen" (the bell opening) in tab 1: the badge goes to 0 in both, nothing is read.
    act(() => tab1.result.current.inbox.markSeen());
    await waitFor(() => expect(tab2.result.current.inbox.unseenCount).toBe(0));
    await waitFor(() => expect(tab1.result.current.inbox.unseenCount).toBe(0));
    expect(tab2.result.current.inbox.unreadCount).toBe(3);
    expect(tab2.result.current.inbox.items.every((n) => n.seenAt && n.readAt === null)).toBe(true);

    // A new one after that is unseen again (counts come with every event, never refetched).
    await mention(server, 'm4');
    await waitFor(() => expect(tab2.result.current.inbox.unseenCount).toBe(1));
    expect(tab2.result.current.inbox.unreadCount).toBe(4);

    // Read in tab 2: read implies seen; the unread list of tab 1 loses it.
    const m4 = tab2.result.current.inbox.items[0]!;
    expect(m4.title).toBe('m4');
    act(() => tab2.result.current.inbox.markRead([m4.id]));
    await waitFor(() => expect(tab1.result.current.inbox.unreadCount).toBe(3));
    expect(tab1.result.current.inbox.unseenCount).toBe(0);
    await waitFor(() =>
      expect(tab1.result.current.unread.items.map((n) => n.title)).toEqual(['m3', 'm2', 'm1']),
    );

    // Archive in tab 1: it leaves the default lists and counts of both tabs, joins Archived.
    const m2 = tab1.result.current.inbox.items.find((n) => n.title === 'm2')!;
    act(() => tab1.result.current.inbox.archive([m2.id]));
    for (const tab of [tab1, tab2])
      await waitFor(() => {
        expect(tab.result.current.inbox.items.map((n) => n.title)).toEqual(['m4', 'm3', 'm1']);
        expect(tab.result.current.archived.items.map((n) => n.title)).toEqual(['m2']);
        expect(tab.result.current.inbox.unreadCount).toBe(2);
      });
    expect(tab2.result.current.archived.items[0]!.archivedAt).not.toBeNull();

    // Unarchive from tab 2's Archived list: back in both, with its seen state, still unread.
    act(() => tab2.result.current.archived.unarchive([m2.id]));
    for (const tab of [tab1, tab2])
      await waitFor(() => {
        expect(tab.result.current.inbox.items.map((n) => n.title)).toEqual(['m4', 'm3', 'm2', 'm1']);
        expect(tab.result.current.archived.items).toEqual([]);
        expect(tab.result.current.inbox.unreadCount).toBe(3);
      });
    expect(tab1.result.current.inbox.items.find((n) => n.id === m2.id)).toMatchObject({
      readAt: null,
      archivedAt: null,
    });
    expect(tab1.result.current.inbox.items.find((n) => n.id === m2.id)?.seenAt).not.toBeNull();

    // Archive everything: both default lists empty, counts 0, the server agrees.
    act(() => tab2.result.current.inbox.archive({ all: true }));
    for (const tab of [tab1, tab2])
      await waitFor(() => {
        expect(tab.result.current.inbox.items).toEqual([]);
        expect(tab.result.current.archived.items).toHaveLength(4);
        expect(tab.result.current.inbox.unreadCount).toBe(0);
      });
    expect(await server.services.notifications.counts('bob', 'acme')).toEqual({
      unseen: 0,
      unread: 0,
      asOf: expect.any(String),
    });
  });

  it('a tab that was offline while another archived and marked seen catches up from the stream, not a refetch', async () => {
    await using server = await startServer();
    await using proxy = await startProxy({ port: server.port });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const away = renderHook(useTab, { wrapper: wrapper(proxy.url, token) });
    const here = renderHook(useTab, { wrapper: wrapper(server.url, token) });
    for (const tab of [away, here]) await waitFor(() => expect(tab.result.current.inbox.status).toBe('live'));
    await mention(server, 'keep');
    await mention(server, 'put away');
    for (const tab of [away, here]) await waitFor(() => expect(tab.result.current.inbox.unseenCount).toBe(2));

    const listCalls = vi.spyOn(server.services.notifications, 'list');
    const countCalls = vi.spyOn(server.services.notifications, 'counts');
    proxy.refuse(true);
    proxy.drop();
    await waitFor(() => expect(away.result.current.inbox.status).toBe('reconnecting'));
    const putAway = here.result.current.inbox.items.find((n) => n.title === 'put away')!;
    act(() => here.result.current.inbox.archive([putAway.id]));
    await waitFor(() => expect(here.result.current.inbox.unreadCount).toBe(1));
    act(() => here.result.current.inbox.markSeen());
    await waitFor(() => expect(here.result.current.inbox.unseenCount).toBe(0));
    proxy.refuse(false);

    // The replayed `state` events move the offline tab: archived item gone, badge 0, still unread.
    await waitFor(() => expect(away.result.current.inbox.items.map((n) => n.title)).toEqual(['keep']));
    await waitFor(() => expect(away.result.current.inbox.unseenCount).toBe(0));
    expect(away.result.current.inbox.unreadCount).toBe(1);
    expect(away.result.current.inbox.items[0]!.seenAt).not.toBeNull();
    expect(away.result.current.inbox.status).toBe('live');
    // Only the archived list may be read again (archive can add items to it); the default list and
    // the counts came from the stream.
    const defaultListReads = listCalls.mock.calls.filter(
      ([, input]) => !(input as { status?: string }).status,
    );
    expect(defaultListReads).toEqual([]);
    expect(countCalls).not.toHaveBeenCalled();
  });

  it('markSeen({ all, upTo }) leaves a newer notification unseen in the list and the counts', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const bob = renderHook(() => useNotifications('acme'), { wrapper: wrapper(server.url, token) });
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    await mention(server, 'shown');
    await waitFor(() => expect(bob.result.current.unseenCount).toBe(1));
    // What the user saw when the bell opened: everything up to this event id.
    const before = bob.result.current.items.map((n) => n.eventId);
    await server.services.notifications.send('system', {
      workspaceId: 'acme',
      userId: 'bob',
      type: 'mention',
      title: 'not shown yet',
      data: { platform: 'x', author: '@fan', text: 'later' },
    });
    expect(before).toHaveLength(1);
    await waitFor(() => expect(bob.result.current.unseenCount).toBe(2));
    // Seen up to the first item only (the upTo the bell would have sent when it opened).
    act(() => bob.result.current.markSeen({ all: true, upTo: before[0]! }));
    await waitFor(() => expect(bob.result.current.unseenCount).toBe(1));
    const byTitle = Object.fromEntries(bob.result.current.items.map((n) => [n.title, n]));
    expect(byTitle.shown?.seenAt).not.toBeNull();
    expect(byTitle['not shown yet']?.seenAt ?? null).toBeNull();
    expect(await server.services.notifications.counts('bob', 'acme')).toEqual({
      unseen: 1,
      unread: 2,
      asOf: expect.any(String),
    });
  });
});

describe('useNotificationPreferences', () => {
  it('a kind muted in one tab is live in the other and the next send of it is neither listed nor counted', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const tab1 = renderHook(useTab, { wrapper: wrapper(server.url, token) });
    const tab2 = renderHook(useTab, { wrapper: wrapper(server.url, token) });
    for (const tab of [tab1, tab2])
      await waitFor(() => expect(tab.result.current.prefs.preferences?.effective.review).toBe(true));

    await act(() => tab1.result.current.prefs.set({ kinds: { review: false } }));
    // Tab 2 learns it from the feed's `preferences` event, without a reload.
    await waitFor(() => expect(tab2.result.current.prefs.preferences?.effective.review).toBe(false));
    expect(tab2.result.current.prefs.preferences?.user.kinds).toEqual({ review: false });

    await review(server, 'muted review');
    await mention(server, 'a mention');
    for (const tab of [tab1, tab2])
      await waitFor(() => expect(tab.result.current.inbox.items.map((n) => n.title)).toEqual(['a mention']));
    expect(tab1.result.current.inbox.unseenCount).toBe(1);
    expect(tab2.result.current.inbox.unreadCount).toBe(1);
    expect(await server.services.notifications.counts('bob', 'acme')).toEqual({
      unseen: 1,
      unread: 1,
      asOf: expect.any(String),
    });

    // Back to the default: the next review arrives (the muted one stays muted).
    await act(() => tab2.result.current.prefs.set({ kinds: { review: null } }));
    await waitFor(() => expect(tab1.result.current.prefs.preferences?.effective.review).toBe(true));
    await review(server, 'heard review');
    await waitFor(() =>
      expect(tab1.result.current.inbox.items.map((n) => n.title)).toEqual(['heard review', 'a mention']),
    );
    expect(tab1.result.current.inbox.unseenCount).toBe(2);
  });

  it('muting crisis alerts where the workspace forbids it is an error with code FORBIDDEN', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const bob = renderHook(() => useNotificationPreferences('acme'), { wrapper: wrapper(server.url, token) });
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    expect(bob.result.current.preferences?.workspace.crisisMutable).toBe(false);
    let caught: unknown;
    await act(async () => {
      await bob.result.current.set({ kinds: { crisis: false } }).catch((e: unknown) => {
        caught = e;
      });
    });
    expect(caught).toMatchObject({ context: { code: 'FORBIDDEN' } });
    expect((caught as Error).message).toContain('Crisis alerts cannot be muted');
    expect(bob.result.current.error?.context).toMatchObject({ code: 'FORBIDDEN' });
    expect(bob.result.current.preferences?.effective.crisis).toBe(true);
  });
});
