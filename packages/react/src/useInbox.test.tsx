import { useQueryClient } from '@tanstack/react-query';
import { act, cleanup, render, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useConversation, useInbox } from './useInbox.js';

afterEach(() => cleanup());

const wrapper =
  (url: string, token: string) =>
  ({ children }: { children: ReactNode }) => (
    <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
      {children}
    </PulseProvider>
  );

describe('useInbox and useConversation', () => {
  it('conversations and messages live; optimistic, idempotent send; markRead and read receipts', async () => {
    await using server = await startServer();
    const first = await server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'instagram',
      externalId: 'thread-1',
      contact: { id: 'c1', name: 'Carla' },
      body: 'Hi, is my order shipped?',
    });
    const conversationId = first.conversation.id;
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const annToken = await server.token({ sub: 'ann', name: 'Ann', workspaces: { acme: 'admin' } });
    const inbox = renderHook(() => useInbox('acme'), { wrapper: wrapper(server.url, bobToken) });
    const bob = renderHook(() => useConversation('acme', conversationId), {
      wrapper: wrapper(server.url, bobToken),
    });
    const ann = renderHook(() => useConversation('acme', conversationId), {
      wrapper: wrapper(server.url, annToken),
    });

    await waitFor(() => expect(inbox.result.current.status).toBe('live'));
    expect(inbox.result.current.conversations).toEqual([
      expect.objectContaining({ id: conversationId, unreadCount: 1, contact: { id: 'c1', name: 'Carla' } }),
    ]);
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    await waitFor(() => expect(ann.result.current.status).toBe('live'));
    expect(bob.result.current.messages.map((m) => m.body)).toEqual(['Hi, is my order shipped?']);

    // A new conversation arrives live and goes to the top.
    await server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'x',
      externalId: 'thread-2',
      contact: { id: 'd1', name: 'Dan' },
      body: 'Hello?',
    });
    await waitFor(() =>
      expect(inbox.result.current.conversations.map((c) => c.contact.name)).toEqual(['Dan', 'Carla']),
    );
    // Carla writes again: her conversation moves up with two unread.
    await server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'instagram',
      externalId: 'thread-1',
      contact: { id: 'c1', name: 'Carla' },
      body: 'Any news?',
    });
    await waitFor(() =>
      expect(inbox.result.current.conversations[0]).toMatchObject({ id: conversationId, unreadCount: 2 }),
    );
    await waitFor(() =>
      expect(ann.result.current.messages.map((m) => m.body)).toEqual([
        'Hi, is my order shipped?',
        'Any news?',
      ]),
    );

    // Bob replies: pending at once, then the stored message; sending the same clientMessageId again is a no-op.
    let reply: Promise<unknown> = Promise.resolve();
    act(() => {
      reply = bob.result.current.send('On its way!', { clientMessageId: 'bob-1' });
    });
    expect(bob.result.current.pending).toEqual([
      expect.objectContaining({ clientMessageId: 'bob-1', body: 'On its way!', status: 'sending' }),
    ]);
    await act(() => reply);
    expect(bob.result.current.pending).toEqual([]);
    await act(() => bob.result.current.send('On its way!', { clientMessageId: 'bob-1' }));
    await waitFor(() => expect(ann.result.current.messages.map((m) => m.body)).toContain('On its way!'));
    expect(bob.result.current.messages.filter((m) => m.clientMessageId === 'bob-1')).toHaveLength(1);
    expect(ann.result.current.messages.filter((m) => m.clientMessageId === 'bob-1')).toHaveLength(1);
    expect(bob.result.current.messages.at(-1)).toMatchObject({
      direction: 'outbound',
      authorId: 'bob',
      authorName: 'Bob',
    });

    // Bob reads everything: his inbox shows 0 unread; Ann sees his receipt.
    act(() => bob.result.current.markRead());
    const lastId = bob.result.current.messages.at(-1)!.id;
    await waitFor(() => expect(ann.result.current.readBy).toEqual({ bob: lastId }));
    await waitFor(() =>
      expect(inbox.result.current.conversations.find((c) => c.id === conversationId)?.unreadCount).toBe(0),
    );
  });

  it('a failed send stays pending as failed with the error code, and retry keeps its clientMessageId', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const view = renderHook(() => useConversation('acme', 'missing-conversation'), {
      wrapper: wrapper(server.url, token),
    });
    let result: unknown = 'unset';
    await act(async () => {
      result = await view.result.current.send('hello', { clientMessageId: 'x-1' });
    });
    expect(result).toBeNull();
    expect(view.result.current.pending).toEqual([
      expect.objectContaining({ clientMessageId: 'x-1', status: 'failed' }),
    ]);
    expect(view.result.current.pending[0]?.error?.context.code).toBe('NOT_FOUND');
    await act(async () => {
      await view.result.current.retry('x-1');
    });
    expect(view.result.current.pending).toEqual([
      expect.objectContaining({ clientMessageId: 'x-1', status: 'failed' }),
    ]);
  });
});

type Renders = { count: number };
const selectLength = (conversations: unknown[]) => conversations.length;
const inboundCount = (messages: { direction: string }[]) =>
  messages.filter((m) => m.direction === 'inbound').length;

/** Counts its renders; shows the number of conversations (selected). */
function InboxCounter({ renders }: { renders: Renders }) {
  renders.count++;
  const inbox = useInbox('acme', { select: selectLength });
  return (
    <p data-testid="counter">
      {inbox.status}:{inbox.conversations}
    </p>
  );
}

function InboxWatcher() {
  const inbox = useInbox('acme');
  return (
    <p data-testid="watcher">
      {inbox.conversations.map((c) => `${c.contact.name}/${c.unreadCount}`).join(',')}
    </p>
  );
}

/** Counts its renders; shows the number of inbound messages (selected). */
function ConversationCounter({ conversationId, renders }: { conversationId: string; renders: Renders }) {
  renders.count++;
  const c = useConversation('acme', conversationId, { select: inboundCount });
  return (
    <p data-testid="counter">
      {c.status}:{c.messages}
    </p>
  );
}

function ConversationWatcher({ conversationId, renders }: { conversationId: string; renders?: Renders }) {
  if (renders) renders.count++;
  const c = useConversation('acme', conversationId);
  return <p data-testid="watcher">{c.messages.map((m) => m.body).join(',')}</p>;
}

describe('useInbox and useConversation select and enabled', () => {
  type Server = Awaited<ReturnType<typeof startServer>>;
  const receive = (server: Server, thread: string, body: string) =>
    server.caller.inbox.receive({
      workspaceId: 'acme',
      platform: 'instagram',
      externalId: thread,
      contact: { id: `contact-${thread}`, name: thread },
      body,
    });

  it('useInbox with select: conversations.length re-renders when a conversation is added, not when one is updated', async () => {
    await using server = await startServer();
    await receive(server, 'carla', 'Hi');
    const token = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const renders = { count: 0 };
    const view = render(
      <PulseProvider url={server.url} token={token} clientOptions={fastClientOptions}>
        <InboxCounter renders={renders} />
        <InboxWatcher />
      </PulseProvider>,
    );
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:1'));
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('carla/1'));
    const before = renders.count;

    // Carla writes again: her conversation changes in place (unread 2), the count stays 1.
    await receive(server, 'carla', 'Any news?');
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('carla/2'));
    expect(renders.count).toBe(before);

    // A new conversation changes the count.
    await receive(server, 'dan', 'Hello?');
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:2'));
    expect(renders.count).toBeGreaterThan(before);
  });

  it('useConversation with select: the inbound count follows inbound messages; an outbound one renders it no more than a plain reader', async () => {
    await using server = await startServer();
    const first = await receive(server, 'carla', 'Hi');
    const conversationId = first.conversation.id;
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const annToken = await server.token({ sub: 'ann', name: 'Ann', workspaces: { acme: 'member' } });
    const renders = { count: 0 };
    const control = { count: 0 };
    const view = render(
      <PulseProvider url={server.url} token={bobToken} clientOptions={fastClientOptions}>
        <ConversationCounter conversationId={conversationId} renders={renders} />
        <ConversationWatcher conversationId={conversationId} renders={control} />
      </PulseProvider>,
    );
    // Ann replies from her own provider: the reply reaches Bob's only through the subscription.
    const ann = renderHook(() => useConversation('acme', conversationId), {
      wrapper: wrapper(server.url, annToken),
    });
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:1'));
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('Hi'));
    await waitFor(() => expect(ann.result.current.status).toBe('live'));
    const before = renders.count;
    const controlBefore = control.count;

    await act(() => ann.result.current.send('On its way!'));
    await waitFor(() => expect(view.getByTestId('watcher').textContent).toBe('Hi,On its way!'));
    // NOTE: relative to a reader without select in the same provider. An outbound reply also moves
    // the hook's other state (the replier's read receipt in `readBy`), which re-renders every
    // reader alike: select narrows `messages` only, so the selecting reader never renders more.
    expect(renders.count - before).toBeLessThanOrEqual(control.count - controlBefore);

    await receive(server, 'carla', 'Thanks!');
    await waitFor(() => expect(view.getByTestId('counter').textContent).toBe('live:2'));
    expect(renders.count).toBeGreaterThan(before);
  });

  it('useConversation enabled: false opens no subscription and fetches no messages; enabling opens them', async () => {
    await using server = await startServer();
    const first = await receive(server, 'carla', 'Hi');
    const conversationId = first.conversation.id;
    const token = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    const view = renderHook(
      ({ enabled }) => ({
        conversation: useConversation('acme', conversationId, { enabled }),
        // A live inbox on the same connection: once it is live, the paused conversation had its chance.
        inbox: useInbox('acme'),
        queryClient: useQueryClient(),
      }),
      { wrapper: wrapper(server.url, token), initialProps: { enabled: false } },
    );
    await waitFor(() => expect(view.result.current.inbox.status).toBe('live'));
    const paths = () => server.stats().transport.subscriptionsByPath;
    expect(paths()['inbox.onEvent']).toBe(1);
    expect(paths()['presence.onTyping'] ?? 0).toBe(0);
    const messageQueries = () =>
      view.result.current.queryClient
        .getQueryCache()
        .getAll()
        .filter((q) => JSON.stringify(q.queryKey).includes('"messages"'));
    expect(
      messageQueries().filter((q) => q.state.dataUpdatedAt > 0 || q.state.fetchStatus !== 'idle'),
    ).toEqual([]);
    expect(view.result.current.conversation.messages).toEqual([]);
    expect(view.result.current.conversation.status).not.toBe('live');

    view.rerender({ enabled: true });
    await waitFor(() => expect(view.result.current.conversation.messages.map((m) => m.body)).toEqual(['Hi']));
    await waitFor(() => expect(paths()['inbox.onEvent']).toBe(2));
    expect(paths()['presence.onTyping']).toBe(1);
  });
});
