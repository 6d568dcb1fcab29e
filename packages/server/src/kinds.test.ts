import { TRPCError } from '@trpc/server';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { notificationKinds } from './kinds.js';
import { type AppRouter, createPulseRouter } from './router.js';
import { type PulseCaller, startPulseServer } from './server.js';

const SECRET = 'kinds-test-secret-long-enough-for-hs256-0123456789';
const shipped = z.object({ orderId: z.string().min(1), carrier: z.enum(['ups', 'dhl']) });

const kindsRouter = createPulseRouter({
  notificationKinds: { order_shipped: shipped },
  replaceDefaults: true,
});

async function start<R extends typeof kindsRouter | undefined>(router: R) {
  const server = await startPulseServer({
    router: router as typeof kindsRouter,
    sqliteFile: ':memory:',
    config: { port: 0, host: '127.0.0.1', logLevel: 'silent', jwt: { secret: SECRET } },
  });
  return Object.assign(server, { [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }) });
}

const admin = {
  userId: 'ann',
  name: 'Ann',
  workspaces: { acme: 'admin' as const },
  service: false,
  expiresAt: Number.POSITIVE_INFINITY,
};

async function errorOf(promise: Promise<unknown>): Promise<TRPCError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return error as TRPCError;
}

describe('createPulseRouter with the app kinds', () => {
  it('replaceDefaults: only the app kinds are accepted; they are stored and listed', async () => {
    await using server = await start(kindsRouter);
    const caller = server.callerFor(admin);
    const sent = await caller.notifications.send({
      workspaceId: 'acme',
      type: 'order_shipped',
      title: 'Shipped',
      data: { orderId: 'o1', carrier: 'dhl' },
    });
    expect(sent).toMatchObject({
      created: true,
      notification: { type: 'order_shipped', data: { carrier: 'dhl' } },
    });
    expectTypeOf(sent.notification.type).toEqualTypeOf<'order_shipped'>();

    const alert = {
      workspaceId: 'acme',
      type: 'alert',
      title: 'Deploy',
      data: { alertType: 'system', severity: 'info', message: 'done' },
    } as const;
    // @ts-expect-error the seed kinds were replaced
    const seed = await errorOf(caller.notifications.send(alert));
    expect(seed.code).toBe('BAD_REQUEST');
    expect((seed.cause as z.ZodError).issues).toEqual([expect.objectContaining({ path: ['type'] })]);

    const fedex = {
      workspaceId: 'acme',
      type: 'order_shipped',
      title: 'x',
      data: { orderId: 'o2', carrier: 'fedex' },
    } as const;
    // @ts-expect-error `fedex` is not a carrier
    const bad = await errorOf(caller.notifications.send(fedex));
    expect(bad.code).toBe('BAD_REQUEST');
    expect((bad.cause as z.ZodError).issues).toEqual([
      expect.objectContaining({ path: ['data', 'carrier'], code: 'invalid_value' }),
    ]);

    const page = await caller.notifications.list({ workspaceId: 'acme', types: ['order_shipped'] });
    expect(page.items.map((n) => n.data)).toEqual([{ orderId: 'o1', carrier: 'dhl' }]);
    const wrongFilter = await errorOf(
      caller.notifications.list({ workspaceId: 'acme', types: ['alert' as 'order_shipped'] }),
    );
    expect(wrongFilter.code).toBe('BAD_REQUEST');
  });

  it("bulk actions take the app's kinds in their filter and refuse unknown ones with the path", async () => {
    await using server = await start(kindsRouter);
    const caller = server.callerFor(admin);
    await caller.notifications.send({
      workspaceId: 'acme',
      userId: 'ann',
      type: 'order_shipped',
      title: 'Shipped',
      data: { orderId: 'o1', carrier: 'ups' },
    });
    const archived = await caller.notifications.archive({
      workspaceId: 'acme',
      all: true,
      kinds: ['order_shipped'],
    });
    expect(archived.ids).toHaveLength(1);
    const read = await caller.notifications.markRead({
      workspaceId: 'acme',
      all: true,
      types: ['order_shipped'],
    });
    expect(read.counts).toEqual({ unseen: 0, unread: 0 });
    const bad = await errorOf(
      // @ts-expect-error the router has no `alert` kind (replaceDefaults)
      caller.notifications.markSeen({ workspaceId: 'acme', all: true, kinds: ['alert'] }),
    );
    expect(bad.code).toBe('BAD_REQUEST');
    expect((bad.cause as z.ZodError).issues).toEqual([expect.objectContaining({ path: ['kinds', 0] })]);
  });

  it("per-kind preferences name the app's kinds: muting one stops its delivery; an unknown kind is refused", async () => {
    await using server = await start(kindsRouter);
    const caller = server.callerFor(admin);
    const prefs = await caller.notifications.preferences.set({
      workspaceId: 'acme',
      kinds: { order_shipped: false },
    });
    expect(prefs.user.kinds).toEqual({ order_shipped: false });
    expect(prefs.effective).toEqual({ order_shipped: false });
    const got = await caller.notifications.preferences.get({ workspaceId: 'acme' });
    expect(got.effective).toEqual({ order_shipped: false });
    // The output carries the router's kinds: one `effective` entry per kind, the choices by kind.
    expectTypeOf(got.effective).toEqualTypeOf<{ order_shipped: boolean }>();
    expectTypeOf(got.user.kinds).toEqualTypeOf<{ order_shipped?: boolean }>();
    expectTypeOf(got.workspace.kinds).toEqualTypeOf<{ order_shipped?: boolean }>();
    expectTypeOf(prefs).toEqualTypeOf(got);
    // @ts-expect-error the router has no `alert` kind (replaceDefaults)
    void got.effective.alert;
    await caller.notifications.send({
      workspaceId: 'acme',
      userId: 'ann',
      type: 'order_shipped',
      title: 'Muted',
      data: { orderId: 'o1', carrier: 'ups' },
    });
    expect((await caller.notifications.list({ workspaceId: 'acme' })).items).toEqual([]);
    const bad = await errorOf(
      // @ts-expect-error the router has no `alert` kind (replaceDefaults)
      caller.notifications.preferences.set({ workspaceId: 'acme', kinds: { alert: false } }),
    );
    expect(bad.code).toBe('BAD_REQUEST');
    expect((bad.cause as z.ZodError).issues).toEqual([
      expect.objectContaining({ code: 'unrecognized_keys', keys: ['alert'], path: ['kinds'] }),
    ]);
  });

  it("webhook rules may name the router's kinds; an unknown one is refused at start", async () => {
    const withRules = (rules: Record<string, { priorities: string[]; delayMs: number }>) =>
      startPulseServer({
        router: kindsRouter,
        sqliteFile: ':memory:',
        config: {
          port: 0,
          host: '127.0.0.1',
          logLevel: 'silent',
          jwt: { secret: SECRET },
          notificationWebhook: {
            url: 'https://hooks.example.test/pulse',
            secret: 'a-webhook-secret-of-some-length',
            rules,
          },
        },
      });
    const server = await withRules({ order_shipped: { priorities: ['normal'], delayMs: 60_000 } });
    await server.close({ graceMs: 0 });
    await expect(withRules({ alert: { priorities: ['urgent'], delayMs: 1_000 } })).rejects.toThrow(
      "PULSE_NOTIFICATION_WEBHOOK_RULES: unknown notification kind in alert (the router's kinds: order_shipped)",
    );
  });

  it("Pulse's default router still refuses a kind it does not know, with the zod path", async () => {
    await using server = await start(undefined);
    const shippedNote = {
      workspaceId: 'acme',
      type: 'order_shipped',
      title: 'Shipped',
      data: { orderId: 'o1', carrier: 'dhl' },
    } as const;
    const caller = server.callerFor(admin) as unknown as PulseCaller<AppRouter>;
    // @ts-expect-error the default router has only the seed kinds
    const error = await errorOf(caller.notifications.send(shippedNote));
    expect(error.code).toBe('BAD_REQUEST');
    expect((error.cause as z.ZodError).issues).toEqual([expect.objectContaining({ path: ['type'] })]);
  });

  it('refuses bad kind definitions at construction', () => {
    expect(() => notificationKinds({ 'Bad-Name': shipped })).toThrow(
      'Notification kind "Bad-Name" must be a lowercase letter then up to 63 lowercase letters, digits or _',
    );
    expect(() => notificationKinds({}, { replaceDefaults: true })).toThrow(
      'notificationKinds: no kinds (replaceDefaults needs at least one)',
    );
    expect(() => notificationKinds({ shipped: z.string() as unknown as z.ZodObject })).toThrow(
      'Notification kind "shipped": data must be a z.object',
    );
    expect(notificationKinds({ order_shipped: shipped }).types).toEqual([
      'mention',
      'message',
      'approval',
      'alert',
      'post_published',
      'post_failed',
      'crisis',
      'review',
      'order_shipped',
    ]);
  });
});
