/**
 * An HTTP answer of the notification feed (list, counts, a mutation's counts) read before a live
 * event and landing after it (issue 16): the event stays in the list and the badge counts it once.
 * Each test holds the answer with a fetch wrapper until the live event went through the feed's
 * handler (a link that watches the subscription), then releases it.
 */
import type { AppRouter, PulseClientOptions } from '@pulse/client';
import { QueryClient } from '@tanstack/react-query';
import type { TRPCLink } from '@trpc/client';
import { observable } from '@trpc/server/observable';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import {
  fastClientOptions,
  startServer,
  mentionBob,
  type TestPulseServer,
} from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useConversation, useInbox } from './useInbox.js';
import { useNotifications } from './useNotifications.js';

afterEach(() => cleanup());

type Server = TestPulseServer;
const mention = mentionBob;

/** The tRPC paths of an HTTP request (`/trpc/a,b?batch=1…`). */
function pathsOf(input: RequestInfo | URL): string[] {
  const url = new URL(String(input instanceof Request ? input.url : input));
  return decodeURIComponent(url.pathname.slice(url.pathname.indexOf('/trpc/') + 6)).split(',');
}

/**
 * Holds HTTP answers of some procedures while armed: `arm(paths, when)` holds the next requests of
 * `paths` (`after`: once the server answered, so the answer is read before what follows; `before`:
 * before the request is sent, so the server reads what follows), `held` resolves when each of them
 * got there, `release()` lets them through.
 */
function answerGate() {
  let armed: {
    paths: Set<string>;
    when: 'before' | 'after';
    reached: Set<string>;
    reachedAll: () => void;
    released: Promise<void>;
  } | null = null;
  let release = () => {};
  const fetchThrough: typeof fetch = async (input, init) => {
    const gate = armed;
    const paths = pathsOf(input as RequestInfo | URL).filter(
      (p) => gate?.paths.has(p) && !gate.reached.has(p),
    );
    if (!gate || paths.length === 0) return fetch(input, init);
    const reach = () => {
      for (const p of paths) gate.reached.add(p);
      if (gate.reached.size === gate.paths.size) gate.reachedAll();
    };
    if (gate.when === 'before') {
      reach();
      await gate.released;
      return fetch(input, init);
    }
    const response = await fetch(input, init);
    // NOTE: the body too: the server has written its whole answer before the gate opens.
    const body = await response.arrayBuffer();
    reach();
    await gate.released;
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return {
    fetch: fetchThrough,
    arm(paths: string[], when: 'before' | 'after' = 'after') {
      let reachedAll = () => {};
      const held = new Promise<void>((resolve) => {
        reachedAll = resolve;
      });
      let open = () => {};
      const released = new Promise<void>((resolve) => {
        open = resolve;
      });
      armed = { paths: new Set(paths), when, reached: new Set(), reachedAll, released };
      release = () => {
        armed = null;
        open();
      };
      return held;
    },
    release: () => release(),
  };
}

/**
 * A link that tells when a subscription's event went through its handlers (they run synchronously
 * inside `next`, so the event is applied when the promise resolves).
 */
function feedWatch() {
  const waiting: Array<{ path: string; test: (event: Watched) => boolean; resolve: () => void }> = [];
  const link: TRPCLink<AppRouter> =
    () =>
    ({ op, next }) =>
      observable((observer) => {
        const subscription = next(op).subscribe({
          next(value) {
            observer.next(value);
            if (value.result.type !== 'data') return;
            const event = (value.result.data as { data?: Watched }).data;
            if (!event) return;
            for (const w of [...waiting]) {
              if (w.path !== op.path || !w.test(event)) continue;
              waiting.splice(waiting.indexOf(w), 1);
              w.resolve();
            }
          },
          error: (error) => observer.error(error),
          complete: () => observer.complete(),
        });
        return () => subscription.unsubscribe();
      });
  const appliedOn = (path: string, test: (event: Watched) => boolean) =>
    new Promise<void>((resolve) => waiting.push({ path, test, resolve }));
  return {
    link,
    appliedOn,
    /** Resolves once the feed applied the notification titled `title` (call before it is sent). */
    applied: (title: string) =>
      appliedOn('notifications.onFeed', (e) => e.type === 'notification' && e.notification?.title === title),
  };
}

/** The fields of a live event the tests look at. */
interface Watched {
  type?: string;
  notification?: { title?: string };
  message?: { body?: string };
}

/** Sends a mention titled `title` and waits until the feed's live handler applied it. */
async function mentionApplied(server: Server, watch: ReturnType<typeof feedWatch>, title: string) {
  const applied = watch.applied(title);
  await mention(server, title);
  await applied;
}

function setup(server: Server, token: string) {
  const gate = answerGate();
  const watch = feedWatch();
  const queryClient = new QueryClient({
    defaultOptions: { queries: { staleTime: 30_000, refetchOnWindowFocus: false } },
  });
  const clientOptions: Omit<PulseClientOptions, 'url' | 'token'> = {
    ...fastClientOptions,
    fetch: gate.fetch,
    links: [watch.link],
  };
  const wrapper = ({ children }: { children: ReactNode }) => (
    <PulseProvider url={server.url} token={token} queryClient={queryClient} clientOptions={clientOptions}>
      {children}
    </PulseProvider>
  );
  return { gate, watch, queryClient, wrapper };
}

const titles = (items: Array<{ title: string }>) => items.map((n) => n.title);

/** What the query cache holds now (read directly: a rendered result may be a render behind). */
function cached(queryClient: QueryClient) {
  const [list] = queryClient.getQueriesData<{ pages: Array<{ items: Array<{ title: string }> }> }>({
    queryKey: [['notifications', 'list']],
  });
  const [counts] = queryClient.getQueriesData<{ unseen: number; unread: number }>({
    queryKey: [['notifications', 'counts']],
  });
  return {
    titles: titles(list?.[1]?.pages.flatMap((page) => page.items) ?? []),
    counts: counts?.[1] ? { unseen: counts[1].unseen, unread: counts[1].unread } : undefined,
  };
}

/** Resolves when no query or mutation is on its way (each answer has landed). */
async function settled(queryClient: QueryClient) {
  await waitFor(() => {
    expect(queryClient.isFetching()).toBe(0);
    expect(queryClient.isMutating()).toBe(0);
  });
}

describe('useNotifications: an HTTP answer read before a live event lands after it', () => {
  it('first load: the notification applied live while list and counts were on their way is listed and counted once', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const held = gate.arm(['notifications.list', 'notifications.counts']);
    const bob = renderHook(() => useNotifications('acme'), { wrapper });
    // Both answers are read (empty, asOf before the notification) and held.
    await held;
    await mentionApplied(server, watch, 'live while loading');
    act(() => gate.release());

    await settled(queryClient);
    expect(cached(queryClient)).toEqual({
      titles: ['live while loading'],
      counts: { unseen: 1, unread: 1 },
    });
    await waitFor(() => {
      expect(bob.result.current.status).toBe('live');
      expect(titles(bob.result.current.items)).toEqual(['live while loading']);
      expect(bob.result.current.unseenCount).toBe(1);
      expect(bob.result.current.unreadCount).toBe(1);
    });
    // The server agrees.
    expect(await server.services.notifications.counts('bob', 'acme')).toMatchObject({ unseen: 1, unread: 1 });
  });

  it('refetch: a notification applied to the cached list while its refetch was on its way stays, counted once', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const bob = renderHook(() => useNotifications('acme'), { wrapper });
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    await mentionApplied(server, watch, 'before');
    await waitFor(() => expect(bob.result.current.unseenCount).toBe(1));

    // A refetch (what a reset or a restarted subscription does) whose answers are read and held.
    const held = gate.arm(['notifications.list', 'notifications.counts']);
    act(() => void queryClient.invalidateQueries({ queryKey: [['notifications']] }));
    await held;
    await mentionApplied(server, watch, 'during refetch');
    // Applied live on the cached data meanwhile.
    expect(cached(queryClient)).toEqual({
      titles: ['during refetch', 'before'],
      counts: { unseen: 2, unread: 2 },
    });
    act(() => gate.release());

    await settled(queryClient);
    expect(cached(queryClient)).toEqual({
      titles: ['during refetch', 'before'],
      counts: { unseen: 2, unread: 2 },
    });
    await waitFor(() => {
      expect(titles(bob.result.current.items)).toEqual(['during refetch', 'before']);
      expect(bob.result.current.unseenCount).toBe(2);
      expect(bob.result.current.unreadCount).toBe(2);
    });
  });

  it('an answer that already holds the live event does not get it twice', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    // Held before the server reads: the answer is read after the notification is stored.
    const held = gate.arm(['notifications.list', 'notifications.counts'], 'before');
    const bob = renderHook(() => useNotifications('acme'), { wrapper });
    await held;
    await mentionApplied(server, watch, 'in the answer');
    act(() => gate.release());

    await settled(queryClient);
    expect(cached(queryClient)).toEqual({ titles: ['in the answer'], counts: { unseen: 1, unread: 1 } });
    await waitFor(() => {
      expect(bob.result.current.status).toBe('live');
      expect(titles(bob.result.current.items)).toEqual(['in the answer']);
      expect(bob.result.current.unseenCount).toBe(1);
    });
  });

  it("markRead's answer read before a new notification does not take the notification out of the counts", async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const bob = renderHook(() => useNotifications('acme'), { wrapper });
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    await mentionApplied(server, watch, 'read me');
    await waitFor(() => expect(bob.result.current.unreadCount).toBe(1));

    const held = gate.arm(['notifications.markRead']);
    const readMe = bob.result.current.items[0]!;
    act(() => bob.result.current.markRead([readMe.id]));
    await held;
    // The read's own event, then a new notification: both live before the answer of the read.
    await mentionApplied(server, watch, 'after the read');
    await waitFor(() => expect(bob.result.current.unreadCount).toBe(1));
    act(() => gate.release());

    // The read's answer ({ unseen: 0, unread: 0 } as of its own event) has landed: still 1.
    await settled(queryClient);
    expect(cached(queryClient)).toEqual({
      titles: ['after the read', 'read me'],
      counts: { unseen: 1, unread: 1 },
    });
    expect(await server.services.notifications.counts('bob', 'acme')).toMatchObject({ unseen: 1, unread: 1 });
    await waitFor(() => {
      expect(bob.result.current.unseenCount).toBe(1);
      expect(bob.result.current.unreadCount).toBe(1);
    });
    expect(bob.result.current.error).toBeNull();
  });
  it('an answer older than the events the feed kept (more than 256 meanwhile) is read again, not completed from a partial log', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const held = gate.arm(['notifications.list', 'notifications.counts']);
    const bob = renderHook(() => useNotifications('acme'), { wrapper });
    await held;
    const last = watch.applied('n300');
    for (let i = 1; i <= 300; i++) await mention(server, `n${i}`);
    await last;
    act(() => gate.release());

    await waitFor(() => expect(cached(queryClient).counts).toEqual({ unseen: 300, unread: 300 }));
    await settled(queryClient);
    expect(cached(queryClient)).toEqual({
      titles: Array.from({ length: 20 }, (_, i) => `n${300 - i}`),
      counts: { unseen: 300, unread: 300 },
    });
    await waitFor(() => expect(bob.result.current.unseenCount).toBe(300));
  });
});

const receive = (server: Server, body: string) =>
  server.caller.inbox.receive({
    workspaceId: 'acme',
    platform: 'instagram',
    externalId: 'thread-1',
    contact: { id: 'c1', name: 'Carla' },
    body,
  });

/** Receives an inbound message and waits until the inbox's live handler applied it. */
async function receiveApplied(server: Server, watch: ReturnType<typeof feedWatch>, body: string) {
  const applied = watch.appliedOn('inbox.onEvent', (e) => e.type === 'message' && e.message?.body === body);
  await receive(server, body);
  await applied;
}

describe('useInbox / useConversation: an HTTP answer read before a live message lands after it', () => {
  it('the conversation list keeps the message applied live while it was on its way (unread once)', async () => {
    await using server = await startServer();
    await receive(server, 'Hi');
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const held = gate.arm(['inbox.conversations']);
    const inbox = renderHook(() => useInbox('acme'), { wrapper });
    await held;
    await receiveApplied(server, watch, 'Any news?');
    act(() => gate.release());

    await settled(queryClient);
    const [[, data]] = queryClient.getQueriesData<{
      pages: Array<{ items: Array<{ unreadCount: number; lastMessagePreview?: string }> }>;
    }>({ queryKey: [['inbox', 'conversations']] }) as [
      [unknown, { pages: Array<{ items: Array<{ unreadCount: number }> }> }],
    ];
    expect(data.pages.flatMap((page) => page.items).map((c) => c.unreadCount)).toEqual([2]);
    await waitFor(() => expect(inbox.result.current.conversations.map((c) => c.unreadCount)).toEqual([2]));
  });

  it("a conversation's messages keep the message applied live while they were on their way (listed once)", async () => {
    await using server = await startServer();
    const first = await receive(server, 'Hi');
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const { gate, watch, queryClient, wrapper } = setup(server, token);
    const held = gate.arm(['inbox.messages']);
    const bob = renderHook(() => useConversation('acme', first.conversation.id), { wrapper });
    await held;
    await receiveApplied(server, watch, 'Any news?');
    act(() => gate.release());

    await settled(queryClient);
    const [[, data]] = queryClient.getQueriesData({ queryKey: [['inbox', 'messages']] }) as [
      [unknown, { pages: Array<{ items: Array<{ body: string }> }> }],
    ];
    expect(data.pages.flatMap((page) => page.items).map((m) => m.body)).toEqual(['Hi', 'Any news?']);
    await waitFor(() => expect(bob.result.current.messages.map((m) => m.body)).toEqual(['Hi', 'Any news?']));
  });
});
