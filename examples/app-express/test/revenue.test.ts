import type { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { AppRouter } from '../src/app.js';
import { startExpressExample } from '../src/express-server.js';
import { connectApp, startIdentityProvider } from './support.js';

let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
beforeAll(async () => {
  idp = await startIdentityProvider();
});
afterAll(() => idp.close());

async function start() {
  const app = await startExpressExample({ config: idp.config() });
  return Object.assign(app, { [Symbol.asyncDispose]: () => app.close() });
}

describe("the app's mrr dashboard kind", () => {
  it('publish → a subscriber of the workspace gets it, typed; snapshot and history serve it', async () => {
    await using app = await start();
    await using admin = connectApp(app, await idp.token('ann', 'acme', ['org:admin']));
    await using bob = connectApp(app, await idp.token('bob', 'acme'));

    const seen: unknown[] = [];
    const sub = bob.trpc.dashboard.onUpdate.subscribe(
      { workspaceId: 'acme', kinds: ['mrr'] },
      {
        onData: (event) => {
          seen.push(event);
          if (event.type === 'update' && event.kind === 'mrr') {
            expectTypeOf(event.value).toEqualTypeOf<number>();
            expectTypeOf(event.currency).toEqualTypeOf<string>();
          }
        },
      },
    );
    await vi.waitFor(() =>
      expect(seen).toEqual([expect.objectContaining({ type: 'snapshot', updates: [] })]),
    );

    const published = await admin.trpc.dashboard.publish.mutate({
      workspaceId: 'acme',
      kind: 'mrr',
      value: 1_250_000,
      currency: 'EUR',
    });
    expect(published).toMatchObject({ applied: true, event: { kind: 'mrr', value: 1_250_000 } });
    await vi.waitFor(() =>
      expect(seen[1]).toMatchObject({ type: 'update', kind: 'mrr', value: 1_250_000, currency: 'EUR' }),
    );
    sub.unsubscribe();

    const snapshot = await bob.trpc.dashboard.snapshot.query({ workspaceId: 'acme', kinds: ['mrr'] });
    expect(snapshot.updates).toEqual([expect.objectContaining({ kind: 'mrr', value: 1_250_000 })]);
    const history = await bob.trpc.dashboard.history.query({
      workspaceId: 'acme',
      kind: 'mrr',
      from: new Date(Date.now() - 60_000).toISOString(),
      bucket: 'raw',
    });
    expect(history.series).toEqual([
      expect.objectContaining({ series: 'value', points: [expect.objectContaining({ value: 1_250_000 })] }),
    ]);
  });

  it('a bad mrr value is a BAD_REQUEST naming the zod path', async () => {
    await using app = await start();
    await using admin = connectApp(app, await idp.token('ann', 'acme', ['org:admin']));
    const bad = await admin.trpc.dashboard.publish
      .mutate({ workspaceId: 'acme', kind: 'mrr', value: 10, currency: 'euro' })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>);
    expect((bad as TRPCClientError<AppRouter>).data?.code).toBe('BAD_REQUEST');
    expect((bad as TRPCClientError<AppRouter>).data?.issues).toEqual([
      expect.objectContaining({ path: ['currency'], message: 'must be an ISO 4217 code such as EUR' }),
    ]);
  });
});
