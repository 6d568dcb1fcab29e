import { act, cleanup, render, renderHook, waitFor } from '@testing-library/react';
import { StrictMode, type ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { usePresence, usePresencePage } from './usePresence.js';
import { useTyping } from './useTyping.js';

afterEach(() => cleanup());

function StrictApp() {
  const presence = usePresence('acme');
  const typing = useTyping('acme', 'c1');
  return (
    <p>
      {presence.status}:{presence.users.length}:{typing.status}
    </p>
  );
}

function wrapper(
  url: string,
  token: string | (() => Promise<string>),
  opts: { strict?: boolean; idleMs?: number } = {},
) {
  return ({ children }: { children: ReactNode }) => {
    const provider = (
      <PulseProvider url={url} token={token} clientOptions={fastClientOptions} idleMs={opts.idleMs}>
        {children}
      </PulseProvider>
    );
    return opts.strict ? <StrictMode>{provider}</StrictMode> : provider;
  };
}

describe('usePresence', () => {
  it('two rendered clients see each other, merged per user, with status, page and activity', async () => {
    await using server = await startServer();
    const alice = renderHook(() => usePresence('acme'), {
      wrapper: wrapper(
        server.url,
        await server.token({ sub: 'alice', name: 'Alice', workspaces: { acme: 'admin' } }),
      ),
    });
    const bobToken = await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } });
    // Bob's other tab (no page): still one Bob. The latest change wins the merged page.
    const bobTab2 = renderHook(() => usePresence('acme'), { wrapper: wrapper(server.url, bobToken) });
    await waitFor(() => expect(bobTab2.result.current.me?.userId).toBe('bob'));
    const bob = renderHook(
      () => {
        usePresencePage('acme', '/inbox');
        return usePresence('acme');
      },
      { wrapper: wrapper(server.url, async () => bobToken) },
    );

    await waitFor(() => {
      expect(alice.result.current.users.map((u) => u.userId)).toEqual(['alice', 'bob']);
      expect(bob.result.current.users.map((u) => u.userId)).toEqual(['alice', 'bob']);
    });
    expect(alice.result.current.status).toBe('live');
    expect(alice.result.current.error).toBeNull();
    await waitFor(() => expect(alice.result.current.users[1]).toMatchObject({ name: 'Bob', page: '/inbox' }));
    await waitFor(() => expect(bob.result.current.me).toMatchObject({ userId: 'bob', status: 'online' }));
    expect(alice.result.current.me).toMatchObject({ userId: 'alice', name: 'Alice' });

    act(() => alice.result.current.set({ activity: { kind: 'editing', target: 'post-1' } }));
    await waitFor(() =>
      expect(bob.result.current.users[0]).toMatchObject({
        userId: 'alice',
        activity: { kind: 'editing', target: 'post-1' },
      }),
    );

    // Bob closes one tab: still online; closes the other: gone for Alice.
    bobTab2.unmount();
    await waitFor(() => expect(server.stats().transport.connections).toBe(2));
    expect(alice.result.current.users.map((u) => u.userId)).toEqual(['alice', 'bob']);
    bob.unmount();
    await waitFor(() => expect(alice.result.current.users.map((u) => u.userId)).toEqual(['alice']));
  });

  it('switching workspace leaves the old one at once while the socket stays open', async () => {
    await using server = await startServer({ presence: { graceMs: 60_000 } });
    const alice = renderHook(() => usePresence('acme'), {
      wrapper: wrapper(server.url, await server.token({ sub: 'alice', workspaces: { acme: 'admin' } })),
    });
    const carol = renderHook(({ workspaceId }) => usePresence(workspaceId), {
      initialProps: { workspaceId: 'acme' },
      wrapper: wrapper(
        server.url,
        await server.token({ sub: 'carol', workspaces: { acme: 'member', globex: 'member' } }),
      ),
    });
    await waitFor(() => expect(alice.result.current.users.map((u) => u.userId)).toEqual(['alice', 'carol']));
    carol.rerender({ workspaceId: 'globex' });
    // With a 60 s grace, only an explicit leave can make Carol disappear this soon.
    await waitFor(() => expect(alice.result.current.users.map((u) => u.userId)).toEqual(['alice']));
    await waitFor(() => expect(carol.result.current.me).toMatchObject({ userId: 'carol' }));
    expect(server.stats().transport.connections).toBe(2);
  });

  it('goes away after the idle time and on a hidden tab, back online on activity', async () => {
    await using server = await startServer();
    const watcher = renderHook(() => usePresence('acme', { announce: false }), {
      wrapper: wrapper(server.url, await server.token({ sub: 'watcher', workspaces: { acme: 'member' } })),
    });
    const bob = renderHook(({ idleMs }) => usePresence('acme', { idleMs }), {
      initialProps: { idleMs: 60_000 },
      wrapper: wrapper(server.url, await server.token({ sub: 'bob', workspaces: { acme: 'member' } })),
    });
    const bobSeen = () => watcher.result.current.users.find((u) => u.userId === 'bob')?.status;
    await waitFor(() => expect(bobSeen()).toBe('online'));
    // The watcher only watches.
    expect(watcher.result.current.users.map((u) => u.userId)).toEqual(['bob']);
    // A short idle threshold: Bob has been idle longer than that, so he goes away.
    bob.rerender({ idleMs: 100 });
    await waitFor(() => expect(bobSeen()).toBe('away'));
    // Back to a long threshold; input brings him back online (and keeps him there).
    bob.rerender({ idleMs: 60_000 });
    act(() => {
      window.dispatchEvent(new Event('keydown'));
    });
    await waitFor(() => expect(bobSeen()).toBe('online'));

    const visibility = vi.spyOn(document, 'visibilityState', 'get').mockReturnValue('hidden');
    act(() => {
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(() => expect(bobSeen()).toBe('away'));
    visibility.mockReturnValue('visible');
    act(() => {
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(() => expect(bobSeen()).toBe('online'));
    visibility.mockRestore();
    expect(bob.result.current.me?.status).toBe('online');
  });

  it('a workspace the token does not include is an error state with code FORBIDDEN, not a throw', async () => {
    await using server = await startServer();
    const eve = renderHook(() => usePresence('acme'), {
      wrapper: wrapper(server.url, await server.token({ sub: 'eve', workspaces: { globex: 'admin' } })),
    });
    await waitFor(() => expect(eve.result.current.status).toBe('error'));
    expect(eve.result.current.error?.context).toMatchObject({ type: 'AUTH', code: 'FORBIDDEN' });
    expect(eve.result.current.users).toEqual([]);
  });

  it('a rejected set is an INPUT error with the zod issues, and the next valid set clears it', async () => {
    await using server = await startServer();
    const bob = renderHook(() => usePresence('acme'), {
      wrapper: wrapper(server.url, await server.token({ sub: 'bob', workspaces: { acme: 'member' } })),
    });
    await waitFor(() => expect(bob.result.current.me?.status).toBe('online'));
    act(() => bob.result.current.set({ page: 'x'.repeat(600) }));
    await waitFor(() => expect(bob.result.current.error?.context.type).toBe('INPUT'));
    const context = bob.result.current.error!.context;
    expect(context).toMatchObject({ code: 'BAD_REQUEST' });
    expect(context.type === 'INPUT' && context.issues.map((i) => i.path)).toEqual([['page']]);
    expect(bob.result.current.status).toBe('live');
    act(() => bob.result.current.set({ page: '/ok' }));
    await waitFor(() => expect(bob.result.current.me?.page).toBe('/ok'));
    expect(bob.result.current.error).toBeNull();
  });

  it('StrictMode leaves one socket and one live subscription per hook', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'alice', workspaces: { acme: 'admin' } });
    const view = render(<StrictApp />, { wrapper: wrapper(server.url, token, { strict: true }) });
    await waitFor(() => expect(view.container.textContent).toBe('live:1:live'));
    await waitFor(() =>
      expect(server.stats().transport).toMatchObject({
        connections: 1,
        subscriptions: 2,
        subscriptionsByPath: { 'presence.onChange': 1, 'presence.onTyping': 1 },
      }),
    );
    view.unmount();
    await waitFor(() => expect(server.stats().transport.connections).toBe(0));
  });
});

describe('useTyping', () => {
  it('shows others typing (not the viewer), throttles keystrokes and stops explicitly', async () => {
    await using server = await startServer({ presence: { typingTtlMs: 5_000 } });
    const alice = renderHook(() => useTyping('acme', 'c1'), {
      wrapper: wrapper(
        server.url,
        await server.token({ sub: 'alice', name: 'Alice', workspaces: { acme: 'admin' } }),
      ),
    });
    const bob = renderHook(() => useTyping('acme', 'c1'), {
      wrapper: wrapper(
        server.url,
        await server.token({ sub: 'bob', name: 'Bob', workspaces: { acme: 'member' } }),
      ),
    });
    await waitFor(() => expect(bob.result.current.status).toBe('live'));
    await waitFor(() => expect(alice.result.current.status).toBe('live'));
    const typingSpy = vi.spyOn(server.services.presence, 'setTyping');
    act(() => {
      for (let i = 0; i < 10; i++) alice.result.current.setTyping(true);
    });
    await waitFor(() =>
      expect(bob.result.current.typing).toEqual([{ conversationId: 'c1', userId: 'alice', name: 'Alice' }]),
    );
    expect(alice.result.current.typing).toEqual([]);
    expect(typingSpy).toHaveBeenCalledTimes(1);
    act(() => alice.result.current.setTyping(false));
    await waitFor(() => expect(bob.result.current.typing).toEqual([]));
    expect(typingSpy).toHaveBeenCalledTimes(2);
    expect(typingSpy.mock.calls[1]?.[1]).toMatchObject({ isTyping: false });
  });
});
