import { cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { useDashboard } from './useDashboard.js';

afterEach(() => cleanup());

const wrapper =
  (url: string, token: string) =>
  ({ children }: { children: ReactNode }) => (
    <PulseProvider url={url} token={token} clientOptions={fastClientOptions}>
      {children}
    </PulseProvider>
  );

describe('useDashboard', () => {
  it('starts from the latest values and follows live updates matching its filter', async () => {
    await using server = await startServer();
    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 100,
    });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const all = renderHook(() => useDashboard('acme'), { wrapper: wrapper(server.url, token) });
    const followersOnly = renderHook(() => useDashboard('acme', { kinds: ['followers'] }), {
      wrapper: wrapper(server.url, token),
    });
    await waitFor(() => expect(all.result.current.status).toBe('live'));
    expect(Object.values(all.result.current.values)).toEqual([
      expect.objectContaining({ kind: 'followers', count: 100, platform: 'instagram' }),
    ]);
    expect(all.result.current.lastUpdate).toBeNull();
    await waitFor(() => expect(followersOnly.result.current.status).toBe('live'));

    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'metric',
      platform: 'x',
      accountId: 'brand',
      metric: 'impressions',
      value: 42,
    });
    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 101,
    });
    await waitFor(() =>
      expect(all.result.current.lastUpdate).toMatchObject({ kind: 'followers', count: 101 }),
    );
    const values = Object.values(all.result.current.values);
    expect(values).toHaveLength(2);
    expect(values).toContainEqual(
      expect.objectContaining({ kind: 'metric', metric: 'impressions', value: 42 }),
    );
    await waitFor(() =>
      expect(Object.values(followersOnly.result.current.values)).toEqual([
        expect.objectContaining({ kind: 'followers', count: 101 }),
      ]),
    );
    expect(followersOnly.result.current.lastUpdate?.kind).toBe('followers');
  });

  it('another workspace is an error state with code FORBIDDEN', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'eve', workspaces: { globex: 'member' } });
    const eve = renderHook(() => useDashboard('acme'), { wrapper: wrapper(server.url, token) });
    await waitFor(() => expect(eve.result.current.status).toBe('error'));
    expect(eve.result.current.error?.context).toMatchObject({ type: 'AUTH', code: 'FORBIDDEN' });
    expect(eve.result.current.values).toEqual({});
  });
});
