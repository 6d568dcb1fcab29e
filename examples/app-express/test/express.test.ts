import type { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppRouter } from '../src/app.js';
import { startExpressExample } from '../src/express-server.js';
import { codeOf, startProxy } from '@pulse/server/testing';
import { collect, connectApp, startIdentityProvider } from './support.js';

let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
beforeAll(async () => {
  idp = await startIdentityProvider();
});
afterAll(() => idp.close());

async function start() {
  const app = await startExpressExample({ config: idp.config() });
  return Object.assign(app, { [Symbol.asyncDispose]: () => app.close() });
}

describe('example app on Express (RS256 tokens from a local JWKS)', () => {
  it("typed publish → subscribe on the comments channel, next to the app's own posts router and Express routes", async () => {
    await using app = await start();
    await using alice = connectApp(app, await idp.token('alice', 'acme'));
    await using bob = connectApp(app, await idp.token('bob', 'acme', ['org:admin']));

    await alice.trpc.posts.create.mutate({ workspaceId: 'acme', id: 'p1', title: 'Launch' });
    expect(await bob.trpc.posts.get.query({ workspaceId: 'acme', id: 'p1' })).toMatchObject({
      title: 'Launch',
      authorId: 'alice',
    });
    // Pulse's own routers are served too, with roles mapped from the provider's `roles` claim:
    // `org:admin` may send notifications (admin), a plain member may not.
    expect(await bob.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(0);
    const note = {
      workspaceId: 'acme',
      type: 'alert' as const,
      title: 'Deploy',
      data: { alertType: 'system' as const, severity: 'info' as const, message: 'Deploy done' },
    };
    expect((await bob.trpc.notifications.send.mutate(note)).created).toBe(true);
    const notAdmin = await alice.trpc.notifications.send.mutate(note).catch((error: unknown) => error);
    expect(codeOf(notAdmin)).toBe('FORBIDDEN');
    expect((notAdmin as Error).message).toBe('Not an admin of workspace "acme"');

    const seen = collect();
    alice.trpc.channels.comments.subscribe.subscribe({ workspaceId: 'acme', input: { postId: 'p1' } }, seen);
    await vi.waitFor(() => expect(seen.synced()).toBe(true));
    const result = await bob.trpc.channels.comments.publish.mutate({
      workspaceId: 'acme',
      input: { postId: 'p1' },
      event: { commentId: 'c1', text: 'Looks great' },
    });
    expect(result).toEqual({ id: '1', created: true });
    await vi.waitFor(() => expect(seen.events()).toHaveLength(1));
    expect(seen.events()[0]).toMatchObject({
      id: '1',
      data: {
        type: 'event',
        from: 'bob',
        input: { postId: 'p1' },
        data: { commentId: 'c1', text: 'Looks great' },
      },
    });

    // The host's own routes still answer, its body parser included.
    expect(await (await fetch(`${app.url}/api/health`)).json()).toEqual({ ok: true, app: 'example' });
    const echo = await fetch(`${app.url}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(await echo.json()).toEqual({ echo: { hello: 'world' } });
    // REST publish through the host.
    const rest = await fetch(`${app.url}/realtime/channels/comments/publish`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await idp.token('bob', 'acme')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { commentId: 'c2', text: 'via REST' },
      }),
    });
    expect(await rest.json()).toEqual({ id: '2', created: true });
    await vi.waitFor(() => expect(seen.events().map((e) => e.id)).toEqual(['1', '2']));
  });

  it('resumes after a dropped TCP connection with nothing lost or doubled', async () => {
    await using app = await start();
    const proxy = await startProxy({ port: new URL(app.url).port ? Number(new URL(app.url).port) : 80 });
    try {
      app.posts.add({ id: 'p1', workspaceId: 'acme', title: 'Launch', private: false, authorId: 'alice' });
      await using alice = connectApp({ url: app.url, wsUrl: proxy.wsUrl }, await idp.token('alice', 'acme'));
      const seen = collect();
      alice.trpc.channels.comments.subscribe.subscribe(
        { workspaceId: 'acme', input: { postId: 'p1' } },
        seen,
      );
      await vi.waitFor(() => expect(seen.synced()).toBe(true));
      const publish = (n: number) =>
        app.pulse.channels.publish(app.comments, {
          workspaceId: 'acme',
          input: { postId: 'p1' },
          event: { commentId: `c${n}`, text: `comment ${n}` },
        });
      await publish(1);
      await publish(2);
      await vi.waitFor(() => expect(seen.events()).toHaveLength(2));

      proxy.refuse(true);
      proxy.drop();
      // The server saw the connection go: what follows is published while the client is away.
      await vi.waitFor(() => expect(app.pulse.stats().transport.connections).toBe(0));
      await publish(3);
      await publish(4);
      await publish(5);
      proxy.refuse(false);

      await vi.waitFor(() => expect(seen.events()).toHaveLength(5), { timeout: 15_000 });
      expect(seen.events().map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
      expect(seen.events().map((e) => (e.data.data as { commentId: string }).commentId)).toEqual([
        'c1',
        'c2',
        'c3',
        'c4',
        'c5',
      ]);
      expect(seen.errors).toEqual([]);
      // One more live event after the resume, still exactly once.
      await publish(6);
      await vi.waitFor(() => expect(seen.events()).toHaveLength(6));
      expect(new Set(seen.items.filter((i) => i.data.type === 'event').map((i) => i.id)).size).toBe(6);
    } finally {
      await proxy.close();
    }
  });

  it('authorize refuses another workspace and another (private) post', async () => {
    await using app = await start();
    app.posts.add({ id: 'public', workspaceId: 'acme', title: 'Public', private: false, authorId: 'carol' });
    app.posts.add({ id: 'draft', workspaceId: 'acme', title: 'Draft', private: true, authorId: 'carol' });
    await using mallory = connectApp(app, await idp.token('mallory', 'globex'));
    await using alice = connectApp(app, await idp.token('alice', 'acme'));

    const otherWorkspace = collect();
    mallory.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'acme', input: { postId: 'public' } },
      otherWorkspace,
    );
    await vi.waitFor(() => expect(otherWorkspace.errors).toHaveLength(1));
    expect(codeOf(otherWorkspace.errors[0])).toBe('FORBIDDEN');
    expect((otherWorkspace.errors[0] as Error).message).toBe('Not a member of workspace "acme"');

    const otherPost = collect();
    alice.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'acme', input: { postId: 'draft' } },
      otherPost,
    );
    await vi.waitFor(() => expect(otherPost.errors).toHaveLength(1));
    expect(codeOf(otherPost.errors[0])).toBe('FORBIDDEN');
    expect((otherPost.errors[0] as Error).message).toBe(
      'Not allowed to subscribe to channel "comments" {"postId":"draft"}',
    );

    const publish = await alice.trpc.channels.comments.publish
      .mutate({ workspaceId: 'acme', input: { postId: 'draft' }, event: { commentId: 'c1', text: 'hi' } })
      .catch((error: unknown) => error);
    expect(codeOf(publish)).toBe('FORBIDDEN');
    // A post of the same id in another workspace is not this one.
    const crossPublish = await mallory.trpc.channels.comments.publish
      .mutate({ workspaceId: 'globex', input: { postId: 'public' }, event: { commentId: 'c1', text: 'hi' } })
      .catch((error: unknown) => error);
    expect(codeOf(crossPublish)).toBe('FORBIDDEN');
  });

  it('a bad comment payload is a BAD_REQUEST naming the zod path', async () => {
    await using app = await start();
    app.posts.add({ id: 'p1', workspaceId: 'acme', title: 'Launch', private: false, authorId: 'alice' });
    await using alice = connectApp(app, await idp.token('alice', 'acme'));
    const error = await alice.trpc.channels.comments.publish
      .mutate({
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { commentId: 'c1', text: '' },
      })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>);
    expect(codeOf(error)).toBe('BAD_REQUEST');
    expect((error as TRPCClientError<AppRouter>).data?.issues).toEqual([
      expect.objectContaining({ path: ['event', 'text'], code: 'too_small' }),
    ]);
  });

  it('pulse.close() stops Pulse and leaves the host server serving its own routes', async () => {
    await using app = await start();
    const closes: Array<number | undefined> = [];
    const alice = connectApp(app, await idp.token('alice', 'acme'), {
      onClose: (cause) => closes.push(cause?.code),
    });
    app.posts.add({ id: 'p1', workspaceId: 'acme', title: 'Launch', private: false, authorId: 'alice' });
    const seen = collect();
    alice.trpc.channels.comments.subscribe.subscribe({ workspaceId: 'acme', input: { postId: 'p1' } }, seen);
    await vi.waitFor(() => expect(seen.synced()).toBe(true));
    await app.pulse.close({ graceMs: 0 });
    // The transport tells its clients it is going away (1001); the host keeps listening.
    await vi.waitFor(() => expect(closes[0]).toBe(1001));
    alice.close();
    expect(app.server.listening).toBe(true);
    expect(await (await fetch(`${app.url}/api/health`)).json()).toEqual({ ok: true, app: 'example' });
  });
});
