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
import { collect, startTestServer } from '../../test/support/vitest.js';
import { dashboardKinds } from '../kinds.js';
import { createPulseRouter } from '../router.js';

const mrr = z.object({ value: z.number().nonnegative(), currency: z.enum(['EUR', 'USD']) });

describe('dashboardKinds', () => {
  const kinds = dashboardKinds({ mrr });

  it('keeps the seed kinds and adds the app kind', () => {
    expect(kinds.types).toEqual(['metric', 'post', 'analytics', 'followers', 'engagement', 'mrr']);
    expect(
      kinds.publishInput.parse({ workspaceId: 'acme', kind: 'mrr', value: 10, currency: 'EUR' }),
    ).toEqual({
      workspaceId: 'acme',
      kind: 'mrr',
      value: 10,
      currency: 'EUR',
    });
  });

  it('a bad app payload fails with the zod path', () => {
    const result = kinds.publishInput.safeParse({
      workspaceId: 'acme',
      kind: 'mrr',
      value: -1,
      currency: 'EUR',
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['value']);
    expect(result.error?.issues[0]?.message).toMatch(/>=0/);
  });

  it('refuses bad kind definitions at construction', () => {
    expect(() => dashboardKinds({ Mrr: mrr })).toThrow(
      'Dashboard kind "Mrr" must be a lowercase letter then up to 63 lowercase letters, digits or _',
    );
    expect(() => dashboardKinds({ metric: mrr })).toThrow(
      `Dashboard kind "metric" is one of Pulse's own kinds: pick another name`,
    );
    expect(() => dashboardKinds({ mrr: mrr.extend({ key: z.string() }) })).toThrow(
      'Dashboard kind "mrr": "key" is set by Pulse, not a field of the kind',
    );
    expect(() => dashboardKinds({}, { replaceDefaults: true })).toThrow(
      'dashboardKinds: no kinds (replaceDefaults needs at least one)',
    );
    expect(dashboardKinds({ mrr }, { replaceDefaults: true }).types).toEqual(['mrr']);
  });
});

const kindsRouter = createPulseRouter({ dashboardKinds: { mrr } });
type KindsRouter = typeof kindsRouter;

function connect(server: { url: string; wsUrl: string }, token: string) {
  const wsClient = createWSClient({
    url: server.wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
    retryDelayMs: () => 50,
  });
  const trpc = createTRPCClient<KindsRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: wsClient }),
        false: httpBatchLink({ url: `${server.url}/trpc`, headers: { authorization: `Bearer ${token}` } }),
      }),
    ],
  });
  return { trpc, [Symbol.asyncDispose]: () => wsClient.close() };
}

type Event = Parameters<
  NonNullable<
    Parameters<ReturnType<typeof connect>['trpc']['dashboard']['onUpdate']['subscribe']>[1]['onData']
  >
>[0];

async function errorOf(promise: Promise<unknown>): Promise<TRPCClientError<KindsRouter>> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCClientError);
  return error as TRPCClientError<KindsRouter>;
}

describe('createPulseRouter({ dashboardKinds }) over a real server', () => {
  it('publishes an mrr value to its workspace only; snapshot, onUpdate and history serve it', async () => {
    await using server = await startTestServer({ router: kindsRouter });
    await using ann = connect(
      server,
      await server.token({ sub: 'ann', workspaces: { a: 'admin', b: 'admin' } }),
    );
    await using bob = connect(server, await server.token({ sub: 'bob', workspaces: { b: 'member' } }));

    const inA = collect<Event>();
    const inB = collect<Event>();
    const subA = ann.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'a', kinds: ['mrr'] }, inA);
    const subB = bob.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'b' }, inB);
    await vi.waitFor(() => {
      expect(inA.items).toEqual([expect.objectContaining({ type: 'snapshot', updates: [] })]);
      expect(inB.items).toEqual([expect.objectContaining({ type: 'snapshot', updates: [] })]);
    });

    const published = await ann.trpc.dashboard.publish.mutate({
      workspaceId: 'a',
      kind: 'mrr',
      value: 1200,
      currency: 'EUR',
    });
    expect(published).toMatchObject({ applied: true, event: { kind: 'mrr', key: 'mrr:*:*', value: 1200 } });
    // A seed kind in A does not pass A's `kinds: ['mrr']` filter.
    await server.caller.dashboard.publish({
      workspaceId: 'a',
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 5,
    });
    // B's own value, so B's subscriber has received something after A's publish.
    await ann.trpc.dashboard.publish.mutate({ workspaceId: 'b', kind: 'mrr', value: 7, currency: 'USD' });

    await vi.waitFor(() => expect(inA.items).toHaveLength(2));
    const update = inA.items[1];
    expect(update).toMatchObject({
      type: 'update',
      workspaceId: 'a',
      kind: 'mrr',
      value: 1200,
      currency: 'EUR',
    });
    if (update?.type === 'update' && update.kind === 'mrr') {
      expectTypeOf(update.value).toEqualTypeOf<number>();
      expectTypeOf(update.currency).toEqualTypeOf<'EUR' | 'USD'>();
    }
    await vi.waitFor(() => expect(inB.items).toHaveLength(2));
    expect(inB.items[1]).toMatchObject({ type: 'update', workspaceId: 'b', kind: 'mrr', value: 7 });
    expect(inB.items.some((e) => e.workspaceId === 'a')).toBe(false);
    subA.unsubscribe();
    subB.unsubscribe();

    const snapshot = await ann.trpc.dashboard.snapshot.query({ workspaceId: 'a', kinds: ['mrr'] });
    expect(snapshot.updates).toEqual([
      expect.objectContaining({ kind: 'mrr', value: 1200, currency: 'EUR' }),
    ]);

    const from = new Date(Date.now() - 60_000).toISOString();
    const raw = await ann.trpc.dashboard.history.query({
      workspaceId: 'a',
      kind: 'mrr',
      from,
      bucket: 'raw',
    });
    expect(raw.series).toEqual([
      expect.objectContaining({
        key: 'mrr:*:*',
        series: 'value',
        kind: 'mrr',
        points: [expect.objectContaining({ value: 1200, count: 1 })],
      }),
    ]);
    const buckets = await ann.trpc.dashboard.history.query({
      workspaceId: 'a',
      kind: 'mrr',
      from,
      metric: 'value',
    });
    expect(buckets.series.map((s) => s.points.map((p) => p.value))).toEqual([[1200]]);
  });

  it('a bad mrr payload is BAD_REQUEST with the zod path; an unknown kind is refused', async () => {
    await using server = await startTestServer({ router: kindsRouter });
    await using ann = connect(server, await server.token({ sub: 'ann', workspaces: { a: 'admin' } }));

    const bad = await errorOf(
      ann.trpc.dashboard.publish.mutate({ workspaceId: 'a', kind: 'mrr', value: -3, currency: 'EUR' }),
    );
    expect(bad.data?.code).toBe('BAD_REQUEST');
    expect((bad.data as { issues?: unknown[] }).issues).toEqual([
      expect.objectContaining({ path: ['value'], code: 'too_small' }),
    ]);

    const wrongType = { workspaceId: 'a', kind: 'mrr', value: 'lots', currency: 'EUR' } as const;
    // @ts-expect-error value is a number
    const typed = await errorOf(ann.trpc.dashboard.publish.mutate(wrongType));
    expect((typed.data as { issues?: unknown[] }).issues).toEqual([
      expect.objectContaining({ path: ['value'], code: 'invalid_type' }),
    ]);

    const weather = { workspaceId: 'a', kind: 'weather', value: 1 } as const;
    // @ts-expect-error the router has no `weather` kind
    const unknownKind = await errorOf(ann.trpc.dashboard.publish.mutate(weather));
    expect(unknownKind.data?.code).toBe('BAD_REQUEST');
    expect((unknownKind.data as { issues?: unknown[] }).issues).toEqual([
      expect.objectContaining({ path: ['kind'] }),
    ]);

    const filter = await errorOf(
      // @ts-expect-error the filter names the router's kinds
      ann.trpc.dashboard.snapshot.query({ workspaceId: 'a', kinds: ['weather'] }),
    );
    expect(filter.data?.code).toBe('BAD_REQUEST');
    const history = await errorOf(
      // @ts-expect-error history reads one of the router's kinds
      ann.trpc.dashboard.history.query({ workspaceId: 'a', kind: 'weather', from: new Date().toISOString() }),
    );
    expect(history.data?.code).toBe('BAD_REQUEST');
  });
});
