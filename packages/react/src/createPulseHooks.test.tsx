import { createPulseRouter, mintToken, startPulseServer } from '@pulse/server';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TEST_SECRET } from '@pulse/server/testing';
import { fastClientOptions } from '../test/pulse-test-server.js';
import { createPulseHooks } from './createPulseHooks.js';
import { PulseProvider } from './PulseProvider.js';

afterEach(() => cleanup());

const appRouter = createPulseRouter({
  notificationKinds: { invoice_paid: z.object({ invoiceId: z.string(), amount: z.number().int() }) },
  dashboardKinds: { mrr: z.object({ value: z.number().nonnegative(), currency: z.enum(['EUR', 'USD']) }) },
});
type AppRouter = typeof appRouter;
const { useDashboard, useDashboardHistory, useNotificationPreferences } = createPulseHooks<AppRouter>();

async function start() {
  const server = await startPulseServer({
    router: appRouter,
    sqliteFile: ':memory:',
    config: { port: 0, host: '127.0.0.1', logLevel: 'silent', jwt: { secret: TEST_SECRET } },
  });
  return Object.assign(server, { [Symbol.asyncDispose]: () => server.close({ graceMs: 0 }) });
}

const wrapper =
  (url: string, token: string) =>
  ({ children }: { children: ReactNode }) => (
    <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
      {children}
    </PulseProvider>
  );

describe('createPulseHooks with an app dashboard kind', () => {
  it('useDashboard and useDashboardHistory receive the mrr values published on the server', async () => {
    await using server = await start();
    await server.caller.dashboard.publish({ workspaceId: 'acme', kind: 'mrr', value: 100, currency: 'EUR' });
    const token = await mintToken(server.config.jwt, { sub: 'bob', workspaces: { acme: 'member' } });
    const live = renderHook(() => useDashboard('acme', { kinds: ['mrr'] }), {
      wrapper: wrapper(server.url, token),
    });
    const chart = renderHook(() => useDashboardHistory('acme', { kind: 'mrr', bucket: 'raw' }), {
      wrapper: wrapper(server.url, token),
    });
    await waitFor(() => expect(live.result.current.status).toBe('live'));
    expect(Object.values(live.result.current.values)).toEqual([
      expect.objectContaining({ kind: 'mrr', value: 100, currency: 'EUR', key: 'mrr:*:*' }),
    ]);
    await waitFor(() => expect(chart.result.current.status).toBe('live'));

    await server.caller.dashboard.publish({ workspaceId: 'acme', kind: 'mrr', value: 130, currency: 'EUR' });
    await waitFor(() => expect(live.result.current.lastUpdate).toMatchObject({ kind: 'mrr', value: 130 }));
    await waitFor(() =>
      expect(chart.result.current.series).toEqual([
        expect.objectContaining({
          key: 'mrr:*:*',
          series: 'value',
          kind: 'mrr',
          points: [expect.objectContaining({ value: 100 }), expect.objectContaining({ value: 130 })],
        }),
      ]),
    );
  });
});

describe('createPulseHooks with an app notification kind', () => {
  const bob = {
    userId: 'bob',
    name: 'Bob',
    workspaces: { acme: 'member' as const },
    service: false,
    expiresAt: Number.POSITIVE_INFINITY,
  };

  it('useNotificationPreferences sets invoice_paid, reads it back, and follows a change made elsewhere', async () => {
    await using server = await start();
    const token = await mintToken(server.config.jwt, { sub: 'bob', workspaces: { acme: 'member' } });
    const prefs = renderHook(() => useNotificationPreferences('acme'), {
      wrapper: wrapper(server.url, token),
    });
    await waitFor(() => expect(prefs.result.current.status).toBe('live'));
    await waitFor(() => expect(prefs.result.current.preferences?.effective.invoice_paid).toBe(true));

    let saved: Awaited<ReturnType<typeof prefs.result.current.set>> | undefined;
    await act(async () => {
      saved = await prefs.result.current.set({ kinds: { invoice_paid: false } });
    });
    expect(saved?.user.kinds).toEqual({ invoice_paid: false });
    expect(saved?.effective).toMatchObject({ invoice_paid: false, mention: true, review: true });
    expect(prefs.result.current.preferences?.effective.invoice_paid).toBe(false);
    expect(prefs.result.current.error).toBeNull();

    // Read back through a new provider (a reload): the server stored the app kind's choice.
    const reloaded = renderHook(() => useNotificationPreferences('acme'), {
      wrapper: wrapper(server.url, token),
    });
    await waitFor(() =>
      expect(reloaded.result.current.preferences?.user.kinds).toEqual({ invoice_paid: false }),
    );
    expect(reloaded.result.current.preferences?.effective.invoice_paid).toBe(false);
    const stored = await server.callerFor(bob).notifications.preferences.get({ workspaceId: 'acme' });
    expect(stored.effective.invoice_paid).toBe(false);

    // Bob on another device drops the choice: both hooks follow the feed's `preferences` event.
    await server
      .callerFor(bob)
      .notifications.preferences.set({ workspaceId: 'acme', kinds: { invoice_paid: null } });
    for (const hook of [prefs, reloaded]) {
      await waitFor(() => expect(hook.result.current.preferences?.effective.invoice_paid).toBe(true));
      expect(hook.result.current.preferences?.user.kinds).toEqual({});
    }

    // A kind the router does not have is refused by the server (TypeScript refuses it too).
    let caught: unknown;
    await act(async () => {
      // @ts-expect-error the router has no `weather` kind
      await prefs.result.current.set({ kinds: { weather: false } }).catch((e: unknown) => {
        caught = e;
      });
    });
    expect(caught).toMatchObject({
      context: {
        type: 'INPUT',
        code: 'BAD_REQUEST',
        issues: [expect.objectContaining({ path: ['kinds'], message: 'Unrecognized key: "weather"' })],
      },
    });
    expect(JSON.parse((caught as Error).message)).toEqual([
      expect.objectContaining({ code: 'unrecognized_keys', keys: ['weather'], path: ['kinds'] }),
    ]);
    expect(prefs.result.current.error?.context).toMatchObject({ code: 'BAD_REQUEST' });
    expect(prefs.result.current.preferences?.effective.invoice_paid).toBe(true);
  });
});
