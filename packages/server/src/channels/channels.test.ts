import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  splitLink,
  TRPCClientError,
  wsLink,
} from '@trpc/client';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { mintToken } from '../auth/token.js';
import { pulseRouters } from '../router.js';
import { startPulseServer } from '../server.js';
import { memberProcedure, router } from '../trpc.js';
import { defineChannel } from './channel.js';
import { channelRouter } from './channels.router.js';

const SECRET = 'channels-test-secret-long-enough-for-hs256-0123456789';

const comments = defineChannel({
  name: 'comments',
  input: z.object({ postId: z.string().min(1) }),
  event: z.object({ commentId: z.string(), text: z.string().min(1).max(500) }),
  durable: true,
  retention: 3,
  // Posts starting with "secret" are for admins only.
  authorize: ({ principal, workspaceId, input }) =>
    !input.postId.startsWith('secret') || principal.workspaces[workspaceId] === 'admin',
});

const cursors = defineChannel({
  name: 'cursors',
  input: z.object({ docId: z.string() }),
  event: z.object({ x: z.number(), y: z.number() }),
  durable: false,
});

const postsRouter = router({
  /** The app's own query, mutation and async-generator subscription on Pulse's builders. */
  get: memberProcedure.input(z.object({ postId: z.string() })).query(({ input, ctx }) => ({
    postId: input.postId,
    viewer: ctx.principal.userId,
  })),
  like: memberProcedure
    .input(z.object({ postId: z.string() }))
    .mutation(({ input }) => ({ liked: input.postId })),
  countdown: memberProcedure
    .input(z.object({ from: z.number().int().max(10) }))
    .subscription(async function* ({ input }) {
      for (let n = input.from; n >= 0; n--) yield n;
    }),
});

const appRouter = router({
  ...pulseRouters,
  posts: postsRouter,
  channels: channelRouter([comments, cursors]),
});
type TestRouter = typeof appRouter;

async function start() {
  const server = await startPulseServer({
    router: appRouter,
    sqliteFile: ':memory:',
    config: { port: 0, host: '127.0.0.1', logLevel: 'silent', jwt: { secret: SECRET } },
  });
  const token = (
    sub: string,
    role: 'member' | 'admin' = 'member',
    workspaces: Record<string, 'member' | 'admin'> = {},
  ) => mintToken(server.config.jwt, { sub, workspaces: { acme: role, ...workspaces } });
  const connect = (token: string) => {
    const ws = createWSClient({
      url: server.wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: { token },
      retryDelayMs: () => 50,
    });
    const trpc = createTRPCClient<TestRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === 'subscription',
          true: wsLink({ client: ws }),
          false: httpBatchLink({ url: `${server.url}/trpc`, headers: { authorization: `Bearer ${token}` } }),
        }),
      ],
    });
    return { trpc, ws, [Symbol.asyncDispose]: () => ws.close() };
  };
  return Object.assign(server, { token, connect, [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }) });
}

type Seen = { id?: string; data: { type: string; data?: unknown; headId?: string } };
function collector() {
  const all: Seen[] = [];
  const errors: unknown[] = [];
  return {
    all,
    errors,
    events: () => all.filter((item) => item.data.type === 'event').map((item) => item.data.data),
    onData: (item: unknown) => all.push(item as Seen),
    onError: (error: unknown) => errors.push(error),
  };
}

describe('app procedures and channels', () => {
  it("serves the app's own query, mutation and async-generator subscription next to Pulse's routers", async () => {
    await using server = await start();
    await using alice = server.connect(await server.token('alice'));
    expect(await alice.trpc.posts.get.query({ workspaceId: 'acme', postId: 'p1' })).toEqual({
      postId: 'p1',
      viewer: 'alice',
    });
    expect(await alice.trpc.posts.like.mutate({ workspaceId: 'acme', postId: 'p1' })).toEqual({
      liked: 'p1',
    });
    // Pulse's own routers stay where they were.
    expect(await alice.trpc.notifications.unreadCount.query({ workspaceId: 'acme' })).toBe(0);
    const numbers: number[] = [];
    await new Promise<void>((resolve, reject) => {
      alice.trpc.posts.countdown.subscribe(
        { workspaceId: 'acme', from: 3 },
        { onData: (n) => numbers.push(n), onComplete: resolve, onError: reject },
      );
    });
    expect(numbers).toEqual([3, 2, 1, 0]);
    // Server-side caller typed by the app router.
    expect(await server.caller.posts.get({ workspaceId: 'acme', postId: 'p2' })).toEqual({
      postId: 'p2',
      viewer: 'pulse-internal',
    });
    // Workspace check of Pulse's builders applies to app procedures.
    const refused = await alice.trpc.posts.get.query({ workspaceId: 'other', postId: 'p1' }).catch((e) => e);
    expect(refused).toBeInstanceOf(TRPCClientError);
    expect(refused.data.code).toBe('FORBIDDEN');
  });

  it('durable channel: typed publish → subscribe per post, idempotent per sender, resume, reset past retention', async () => {
    await using server = await start();
    await using alice = server.connect(await server.token('alice'));
    const p1 = collector();
    const p2 = collector();
    alice.trpc.channels.comments.subscribe.subscribe({ workspaceId: 'acme', input: { postId: 'p1' } }, p1);
    alice.trpc.channels.comments.subscribe.subscribe({ workspaceId: 'acme', input: { postId: 'p2' } }, p2);
    await vi.waitFor(() => expect(p1.all[0]?.data.type).toBe('sync'));
    await vi.waitFor(() => expect(p2.all[0]?.data.type).toBe('sync'));

    const first = await alice.trpc.channels.comments.publish.mutate({
      workspaceId: 'acme',
      input: { postId: 'p1' },
      event: { commentId: 'c1', text: 'first' },
      idempotencyKey: 'k1',
    });
    expect(first).toEqual({ id: '1', created: true });
    // The same key from the same sender: nothing new.
    expect(
      await alice.trpc.channels.comments.publish.mutate({
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { commentId: 'c1', text: 'first' },
        idempotencyKey: 'k1',
      }),
    ).toEqual({ id: '1', created: false });
    // The server publishes too (trusted), and so does REST.
    await server.channels.publish(comments, {
      workspaceId: 'acme',
      input: { postId: 'p2' },
      event: { commentId: 'c2', text: 'other post' },
    });
    await server.publish.channel(comments, {
      workspaceId: 'acme',
      input: { postId: 'p1' },
      event: { commentId: 'c3', text: 'from the server' },
    });
    const rest = await fetch(`${server.url}/realtime/channels/comments/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await server.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        workspaceId: 'acme',
        input: { postId: 'p1' },
        event: { commentId: 'c4', text: 'rest' },
      }),
    });
    expect(rest.status).toBe(200);
    expect(await rest.json()).toEqual({ id: '4', created: true });

    await vi.waitFor(() => expect(p1.events()).toHaveLength(3));
    expect(p1.events()).toEqual([
      { commentId: 'c1', text: 'first' },
      { commentId: 'c3', text: 'from the server' },
      { commentId: 'c4', text: 'rest' },
    ]);
    expect(p1.all.filter((i) => i.data.type === 'event').map((i) => i.id)).toEqual(['1', '3', '4']);
    await vi.waitFor(() => expect(p2.events()).toEqual([{ commentId: 'c2', text: 'other post' }]));
    const message = p1.all[1]?.data as unknown as { from: string; input: unknown; workspaceId: string };
    expect(message).toMatchObject({ from: 'alice', input: { postId: 'p1' }, workspaceId: 'acme' });

    // Resume after id 1: only p1's missed events, in order.
    const resumed = collector();
    alice.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'acme', input: { postId: 'p1' }, lastEventId: '1' },
      resumed,
    );
    await vi.waitFor(() => expect(resumed.events()).toHaveLength(2));
    expect(resumed.all.map((i) => i.id)).toEqual(['3', '4']);

    // Retention 3: ids 1..4 stored, 1 pruned; resuming from 0 is past the window → reset at the head.
    const old = collector();
    alice.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'acme', input: { postId: 'p1' }, lastEventId: '0' },
      old,
    );
    await vi.waitFor(() => expect(old.all[0]?.data).toMatchObject({ type: 'reset', headId: '4' }));

    // Idempotency keys live as long as their events: k1 (id 1) falls out with the retention window
    // once a later keyed publish prunes, and may then be used again.
    const again = (key: string) =>
      alice.trpc.channels.comments.publish.mutate({
        workspaceId: 'acme',
        input: { postId: 'p9' },
        event: { commentId: key, text: key },
        idempotencyKey: key,
      });
    expect(await again('k2')).toEqual({ id: '5', created: true });
    expect(await again('k2')).toEqual({ id: '5', created: false });
    expect(await again('k1')).toEqual({ id: '6', created: true });
  });

  it('refuses another workspace, a post authorize refuses, a bad event (zod path), an unknown channel over REST', async () => {
    await using server = await start();
    await using alice = server.connect(await server.token('alice'));
    const otherWorkspace = collector();
    alice.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'globex', input: { postId: 'p1' } },
      otherWorkspace,
    );
    await vi.waitFor(() => expect(otherWorkspace.errors).toHaveLength(1));
    expect((otherWorkspace.errors[0] as TRPCClientError<TestRouter>).data?.code).toBe('FORBIDDEN');

    const secret = collector();
    alice.trpc.channels.comments.subscribe.subscribe(
      { workspaceId: 'acme', input: { postId: 'secret-1' } },
      secret,
    );
    await vi.waitFor(() => expect(secret.errors).toHaveLength(1));
    const denied = secret.errors[0] as TRPCClientError<TestRouter>;
    expect(denied.data?.code).toBe('FORBIDDEN');
    expect(denied.message).toBe('Not allowed to subscribe to channel "comments" {"postId":"secret-1"}');
    const publishDenied = await alice.trpc.channels.comments.publish
      .mutate({ workspaceId: 'acme', input: { postId: 'secret-1' }, event: { commentId: 'c', text: 'x' } })
      .catch((e) => e);
    expect(publishDenied.data.code).toBe('FORBIDDEN');

    const bad = await alice.trpc.channels.comments.publish
      // biome-ignore lint/suspicious/noExplicitAny: a wrong payload on purpose
      .mutate({ workspaceId: 'acme', input: { postId: 'p1' }, event: { commentId: 'c', text: 42 as any } })
      .catch((e) => e);
    expect(bad.data.code).toBe('BAD_REQUEST');
    expect(bad.data.issues).toEqual([
      expect.objectContaining({ path: ['event', 'text'], code: 'invalid_type' }),
    ]);

    const restBad = await fetch(`${server.url}/realtime/channels/comments/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await server.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workspaceId: 'acme', input: { postId: 'p1' }, event: { commentId: 'c' } }),
    });
    expect(restBad.status).toBe(400);
    const body = (await restBad.json()) as { error: { code: string; issues: Array<{ path: string[] }> } };
    expect(body.error.code).toBe('BAD_REQUEST');
    expect(body.error.issues.map((i) => i.path)).toEqual([['event', 'text']]);

    // The REST path is in the OpenAPI document, with the channel's event schema.
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, { post?: { requestBody?: unknown } }>;
    };
    expect(JSON.stringify(openapi.paths['/realtime/channels/comments/publish']?.post?.requestBody)).toContain(
      'commentId',
    );

    const unknown = await fetch(`${server.url}/realtime/channels/nope/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await server.token('alice')}` },
      body: '{}',
    });
    expect(unknown.status).toBe(404);

    // Server-side publish validates too.
    await expect(
      server.channels.publish(comments, {
        workspaceId: 'acme',
        input: { postId: 'p1' },
        // biome-ignore lint/suspicious/noExplicitAny: a wrong payload on purpose
        event: { commentId: 'c' } as any,
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('ephemeral channel: fire-and-forget delivery per key; idempotency keys refused', async () => {
    await using server = await start();
    await using alice = server.connect(await server.token('alice'));
    await using bob = server.connect(await server.token('bob'));
    const doc1 = collector();
    const doc2 = collector();
    alice.trpc.channels.cursors.subscribe.subscribe({ workspaceId: 'acme', input: { docId: 'd1' } }, doc1);
    alice.trpc.channels.cursors.subscribe.subscribe({ workspaceId: 'acme', input: { docId: 'd2' } }, doc2);
    // NOTE: an ephemeral subscription sends nothing first; publish until the first event arrives.
    await vi.waitFor(async () => {
      await bob.trpc.channels.cursors.publish.mutate({
        workspaceId: 'acme',
        input: { docId: 'd1' },
        event: { x: 0, y: 0 },
      });
      expect(doc1.all.length).toBeGreaterThan(0);
    });
    expect(
      await bob.trpc.channels.cursors.publish.mutate({
        workspaceId: 'acme',
        input: { docId: 'd1' },
        event: { x: 5, y: 6 },
      }),
    ).toEqual({ id: null, created: true });
    // Ephemeral events are not tracked: the event itself, no id.
    await vi.waitFor(() =>
      expect(doc1.all.at(-1)).toMatchObject({
        type: 'event',
        from: 'bob',
        input: { docId: 'd1' },
        data: { x: 5, y: 6 },
      }),
    );
    expect(doc2.all).toEqual([]);
    const refused = await bob.trpc.channels.cursors.publish
      .mutate({ workspaceId: 'acme', input: { docId: 'd1' }, event: { x: 1, y: 1 }, idempotencyKey: 'k' })
      .catch((e) => e);
    expect(refused.data.code).toBe('BAD_REQUEST');
    expect(refused.message).toContain('idempotencyKey needs a durable channel');
  });

  it('types: a wrong field in a channel event does not type-check', () => {
    type Client = ReturnType<Awaited<ReturnType<typeof start>>['connect']>['trpc'];
    const publish = (() => {}) as unknown as Client['channels']['comments']['publish']['mutate'];
    expectTypeOf(publish)
      .parameter(0)
      .toHaveProperty('event')
      .toEqualTypeOf<{ commentId: string; text: string }>();
    const input = { postId: 'p1' };
    const wrongEvent = { commentId: 'c', body: 'x' };
    // @ts-expect-error `body` is not a field of a comments event
    void (() => publish({ workspaceId: 'acme', input, event: wrongEvent }));
    const wrongInput = { post: 'p1' };
    const event = { commentId: 'c', text: 'x' };
    // @ts-expect-error `post` is not the key of the comments channel
    void (() => publish({ workspaceId: 'acme', input: wrongInput, event }));
    const serverPublish = (() => {}) as unknown as Awaited<ReturnType<typeof start>>['channels']['publish'];
    const numericText = { commentId: 'c', text: 1 };
    // @ts-expect-error text must be a string
    void (() => serverPublish(comments, { workspaceId: 'acme', input, event: numericText }));
  });
});
