import type { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { AppRouter } from '../src/app.js';
import { startExpressExample } from '../src/express-server.js';
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

const invoice = { invoiceId: 'inv-42', amount: 12_900, currency: 'EUR' };

describe("the app's invoice_paid notification kind", () => {
  it('send → a subscriber gets it, typed; list returns it and filters by the new kind; seed kinds still work', async () => {
    await using app = await start();
    await using admin = connectApp(app, await idp.token('ann', 'acme', ['org:admin']));
    await using bob = connectApp(app, await idp.token('bob', 'acme'));

    const seen = collect();
    bob.trpc.notifications.onNotification.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.synced()).toBe(true));

    const sent = await admin.trpc.notifications.send.mutate({
      workspaceId: 'acme',
      type: 'invoice_paid',
      title: 'Invoice inv-42 paid',
      data: invoice,
    });
    expect(sent.created).toBe(true);
    expect(sent.notification).toMatchObject({ type: 'invoice_paid', data: invoice, priority: 'normal' });
    if (sent.notification.type === 'invoice_paid') {
      expectTypeOf(sent.notification.data).toEqualTypeOf<{
        invoiceId: string;
        amount: number;
        currency: string;
      }>();
    }

    await vi.waitFor(() => expect(seen.items.filter((i) => i.data.type === 'notification')).toHaveLength(1));
    const delivered = seen.items.find((i) => i.data.type === 'notification');
    expect(delivered?.data).toMatchObject({
      type: 'notification',
      notification: { id: sent.notification.id, type: 'invoice_paid', data: invoice, readAt: null },
    });

    // A seed kind next to it, then the list: both, and the `types` filter knows the new kind.
    await admin.trpc.notifications.send.mutate({
      workspaceId: 'acme',
      type: 'alert',
      title: 'Deploy',
      data: { alertType: 'system', severity: 'info', message: 'Deploy done' },
    });
    const all = await bob.trpc.notifications.list.query({ workspaceId: 'acme' });
    expect(all.items.map((n) => n.type)).toEqual(['alert', 'invoice_paid']);
    const invoices = await bob.trpc.notifications.list.query({
      workspaceId: 'acme',
      types: ['invoice_paid'],
    });
    expect(invoices.items).toEqual([expect.objectContaining({ type: 'invoice_paid', data: invoice })]);
    const first = invoices.items[0];
    if (first?.type === 'invoice_paid') expectTypeOf(first.data.currency).toEqualTypeOf<string>();
  });

  it('a bad invoice_paid payload is a BAD_REQUEST naming the zod path; an unknown kind too', async () => {
    await using app = await start();
    await using admin = connectApp(app, await idp.token('ann', 'acme', ['org:admin']));
    const bad = await admin.trpc.notifications.send
      .mutate({
        workspaceId: 'acme',
        type: 'invoice_paid',
        title: 'Invoice paid',
        data: { ...invoice, currency: 'euro' },
      })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>);
    expect((bad as TRPCClientError<AppRouter>).data?.code).toBe('BAD_REQUEST');
    expect((bad as TRPCClientError<AppRouter>).data?.issues).toEqual([
      expect.objectContaining({
        path: ['data', 'currency'],
        code: 'invalid_format',
        message: 'must be an ISO 4217 code such as EUR',
      }),
    ]);

    const unknown = await admin.trpc.notifications.send
      // @ts-expect-error `refund_issued` is not one of the app's kinds
      .mutate({ workspaceId: 'acme', type: 'refund_issued', title: 'Refund', data: invoice })
      .catch((e: unknown) => e as TRPCClientError<AppRouter>);
    expect((unknown as TRPCClientError<AppRouter>).data?.code).toBe('BAD_REQUEST');
    expect((unknown as TRPCClientError<AppRouter>).data?.issues).toEqual([
      expect.objectContaining({ path: ['type'], code: 'invalid_union' }),
    ]);
    // Nothing was stored (the stream is still empty).
    expect(await admin.trpc.notifications.list.query({ workspaceId: 'acme' })).toEqual({
      items: [],
      nextCursor: null,
      asOf: '0',
    });
  });
});
