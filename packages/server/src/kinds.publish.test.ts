import { TRPCError } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createTestDatabase,
  postgresUnavailable,
  REDIS_URL,
  redisUnavailable,
  startTestServer,
} from '../test/support/vitest.js';
import { createPublisher } from './publisher-process.js';
import { createPulseRouter } from './router.js';

const invoicePaid = z.object({ invoiceId: z.string().min(1), amount: z.number().int().positive() });
const mrr = z.object({ value: z.number().nonnegative(), currency: z.enum(['EUR', 'USD']) });
const appRouter = createPulseRouter({
  notificationKinds: { invoice_paid: invoicePaid },
  dashboardKinds: { mrr },
});

async function start() {
  const server = await startTestServer({ router: appRouter as never });
  return server as unknown as Omit<typeof server, 'caller' | 'publish'> & {
    caller: import('./server.js').PulseCaller<typeof appRouter>;
    publish: import('./publisher.js').ServicePublisher<typeof appRouter>;
  };
}

async function rejection(promise: Promise<unknown>): Promise<TRPCError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return error as TRPCError;
}
const issuesOf = (error: TRPCError) => (error.cause as z.ZodError).issues;

describe("every publish path validates against the app's kinds", () => {
  it('server.caller: a bad mrr value and a bad invoice_paid are BAD_REQUEST with the zod path', async () => {
    await using server = await start();
    const bad = await rejection(
      server.caller.dashboard.publish({ workspaceId: 'acme', kind: 'mrr', value: -1, currency: 'EUR' }),
    );
    expect(bad.code).toBe('BAD_REQUEST');
    expect(issuesOf(bad)).toEqual([expect.objectContaining({ path: ['value'] })]);
    const badNote = await rejection(
      server.caller.notifications.send({
        workspaceId: 'acme',
        type: 'invoice_paid',
        title: 'Paid',
        data: { invoiceId: 'i1', amount: 0 },
      }),
    );
    expect(badNote.code).toBe('BAD_REQUEST');
    expect(issuesOf(badNote)).toEqual([expect.objectContaining({ path: ['data', 'amount'] })]);
  });

  it("server.publish: notification / dashboard take the app's kinds and refuse bad payloads", async () => {
    await using server = await start();
    const value = await server.publish.dashboard({
      workspaceId: 'acme',
      kind: 'mrr',
      value: 12,
      currency: 'USD',
    });
    expect(value).toMatchObject({ applied: true, event: { kind: 'mrr', value: 12, currency: 'USD' } });
    const bad = await rejection(
      // @ts-expect-error currency is EUR or USD
      server.publish.dashboard({ workspaceId: 'acme', kind: 'mrr', value: 1, currency: 'GBP' }),
    );
    expect(bad.code).toBe('BAD_REQUEST');
    expect(issuesOf(bad)).toEqual([expect.objectContaining({ path: ['currency'] })]);

    const sent = await server.publish.notification({
      workspaceId: 'acme',
      userId: 'ann',
      type: 'invoice_paid',
      title: 'Paid',
      data: { invoiceId: 'i1', amount: 10 },
    });
    expect(sent).toMatchObject({
      created: true,
      notification: { type: 'invoice_paid', data: { amount: 10 } },
    });
    // The seed-vocabulary senders validate against the same registry (an app kind passes).
    const broadcast = await server.publish.sendWorkspaceNotification('acme', {
      type: 'invoice_paid' as 'alert',
      title: 'Paid',
      data: { invoiceId: 'i2', amount: 3 } as never,
    });
    expect(broadcast.notification.type).toBe('invoice_paid');
    const badNote = await rejection(
      server.publish.notification({
        workspaceId: 'acme',
        type: 'invoice_paid',
        title: 'Paid',
        // @ts-expect-error amount is a number
        data: { invoiceId: 'i1', amount: 'ten' },
      }),
    );
    expect(badNote.code).toBe('BAD_REQUEST');
    expect(issuesOf(badNote)).toEqual([expect.objectContaining({ path: ['data', 'amount'] })]);
    const unknownKind = await rejection(
      server.publish.dashboard({ workspaceId: 'acme', kind: 'weather' as 'mrr', value: 1, currency: 'EUR' }),
    );
    expect(issuesOf(unknownKind)).toEqual([expect.objectContaining({ path: ['kind'] })]);
  });

  it('server.publish.notify has one sender per router kind: an app kind needs a title, a seed kind defaults it', async () => {
    await using server = await start();
    expect(Object.keys(server.publish.notify)).toContain('invoice_paid');
    const sent = await server.publish.notify.invoice_paid({
      workspaceId: 'acme',
      userId: 'ann',
      title: 'Invoice paid',
      data: { invoiceId: 'i9', amount: 40 },
    });
    expect(sent.notification).toMatchObject({
      type: 'invoice_paid',
      title: 'Invoice paid',
      data: { amount: 40 },
    });
    const seed = await server.publish.notify.review({
      workspaceId: 'acme',
      data: { platform: 'facebook', author: 'Kim', rating: 5 },
    });
    expect(seed.notification.title).toBe('New 5-star review from Kim on facebook');
    const noTitle = { workspaceId: 'acme', data: { invoiceId: 'i', amount: 1 } };
    // @ts-expect-error an app kind has no default title
    const untitled = await rejection(server.publish.notify.invoice_paid(noTitle));
    expect(issuesOf(untitled)).toEqual([expect.objectContaining({ path: ['title'] })]);
    const wrong = { workspaceId: 'acme', title: 'x', data: { invoiceId: 'i', amount: 'x' } };
    // @ts-expect-error amount is a number
    const bad = await rejection(server.publish.notify.invoice_paid(wrong));
    expect(issuesOf(bad)).toEqual([expect.objectContaining({ path: ['data', 'amount'] })]);
    expect('weather' in server.publish.notify).toBe(false);
  });

  it('server.publish.notify.<unknown kind> throws a BAD_REQUEST naming the kind and the router kinds', async () => {
    await using server = await start();
    const kinds =
      'mention, message, approval, alert, post_published, post_failed, crisis, review, invoice_paid';
    const untyped = server.publish.notify as unknown as Record<string, (opts: unknown) => Promise<unknown>>;
    // What a JS caller (no TypeScript to refuse the name) gets instead of "not a function".
    const thrown = (() => {
      try {
        void untyped.weather?.({ workspaceId: 'acme', title: 'Sunny', data: {} });
        return null;
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(TRPCError);
    expect((thrown as TRPCError).code).toBe('BAD_REQUEST');
    expect((thrown as TRPCError).message).toBe(
      `notify.weather: "weather" is not a notification kind of this router (its kinds: ${kinds})`,
    );
    // @ts-expect-error the router has no `weather` kind
    expect(() => server.publish.notify.weather).toThrow(
      new TRPCError({
        code: 'BAD_REQUEST',
        message: `notify.weather: "weather" is not a notification kind of this router (its kinds: ${kinds})`,
      }),
    );
    // Inside an async caller the same error is the rejection.
    const rejected = await rejection(
      (async () => untyped.invoicepaid?.({ workspaceId: 'acme', title: 'x', data: {} }))(),
    );
    expect(rejected.code).toBe('BAD_REQUEST');
    expect(rejected.message).toBe(
      `notify.invoicepaid: "invoicepaid" is not a notification kind of this router (its kinds: ${kinds})`,
    );
    // The object still behaves as a plain one: keys, `in`, spread, await, JSON.
    expect(Object.keys(server.publish.notify)).toEqual(kinds.split(', '));
    expect('invoice_paid' in server.publish.notify).toBe(true);
    expect(Object.keys({ ...server.publish.notify })).toEqual(kinds.split(', '));
    expect(await Promise.resolve(server.publish.notify)).toBe(server.publish.notify);
    expect(JSON.stringify(server.publish.notify)).toBe('{}');
    expect(String(server.publish.notify)).toBe('[object Object]');
  });

  it('REST POST /realtime/notifications/send: an app kind is sent, a bad one is 400 with the path', async () => {
    await using server = await start();
    const token = await server.token({ sub: 'ann', workspaces: { acme: 'admin' } });
    const post = (body: unknown) =>
      fetch(`${server.url}/realtime/notifications/send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ok = await post({
      workspaceId: 'acme',
      type: 'invoice_paid',
      title: 'Paid',
      data: { invoiceId: 'i1', amount: 5 },
    });
    expect(ok.status).toBe(200);
    const bad = await post({
      workspaceId: 'acme',
      type: 'invoice_paid',
      title: 'Paid',
      data: { invoiceId: '' },
    });
    expect(bad.status).toBe(400);
    const body = JSON.stringify(await bad.json());
    expect(body).toContain('BAD_REQUEST');
    expect(body).toContain('"invoiceId"');
    expect(body).toContain('"amount"');
  });
});

const pgDown = await postgresUnavailable();
const redisDown = await redisUnavailable();

describe.skipIf(pgDown !== null || redisDown !== null)(
  "createPublisher({ router }) validates against the app's kinds",
  () => {
    it('publishes an mrr value; refuses a bad one with the zod path', async () => {
      const database = await createTestDatabase();
      try {
        await using publisher = await createPublisher({
          router: appRouter,
          databaseUrl: database.url,
          redisUrl: REDIS_URL,
          redisPrefix: `kinds-${process.pid}-${Date.now()}:`,
        });
        const result = await publisher.dashboard({
          workspaceId: 'acme',
          kind: 'mrr',
          value: 99,
          currency: 'EUR',
        });
        expect(result).toMatchObject({ applied: true, event: { kind: 'mrr', value: 99 } });
        const bad = await rejection(
          publisher.dashboard({ workspaceId: 'acme', kind: 'mrr', value: -5, currency: 'EUR' }),
        );
        expect(issuesOf(bad)).toEqual([expect.objectContaining({ path: ['value'] })]);
        const badNote = await rejection(
          publisher.notification({
            workspaceId: 'acme',
            type: 'invoice_paid',
            title: 'x',
            data: { invoiceId: 'i', amount: -1 },
          }),
        );
        expect(issuesOf(badNote)).toEqual([expect.objectContaining({ path: ['data', 'amount'] })]);
      } finally {
        await database.drop();
      }
    });
  },
);
