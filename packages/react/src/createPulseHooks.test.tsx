import { createPulseRouter, mintToken, startPulseServer } from '@pulse/server';
import { cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TEST_SECRET } from '@pulse/server/testing';
import { fastClientOptions } from '../test/pulse-test-server.js';
import { createPulseHooks } from './createPulseHooks.js';
import { PulseProvider } from './PulseProvider.js';

afterEach(() => cleanup());

const appRouter = createPulseRouter({
  dashboardKinds: { mrr: z.object({ value: z.number().nonnegative(), currency: z.enum(['EUR', 'USD']) }) },
});
type AppRouter = typeof appRouter;
const { useDashboard, useDashboardHistory } = createPulseHooks<AppRouter>();

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
