import { cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { fastClientOptions, startServer } from '../test/pulse-test-server.js';
import { PulseProvider } from './PulseProvider.js';
import { mergeDashboardSeries, useDashboard, useDashboardHistory } from './useDashboard.js';

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

describe('useDashboardHistory', () => {
  it('opens on the stored history, then appends live values with no gap and no duplicate at the seam', async () => {
    await using server = await startServer();
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    const publish = (count: number, when?: string) =>
      server.caller.dashboard.publish({
        workspaceId: 'acme',
        kind: 'followers',
        platform: 'instagram',
        accountId: 'brand',
        count,
        ...(when ? { at: when } : {}),
      });
    for (const [i, minutes] of [90, 60, 30, 10].entries()) await publish(100 + i, at(minutes));
    // Another account's values are not in this chart's series.
    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'instagram',
      accountId: 'other',
      count: 5,
      at: at(20),
    });
    const token = await server.token({ sub: 'bob', workspaces: { acme: 'member' } });
    const chart = renderHook(
      () =>
        useDashboardHistory('acme', {
          kind: 'followers',
          platform: 'instagram',
          accountId: 'brand',
          bucket: 'raw',
          windowMs: 2 * 3_600_000,
        }),
      { wrapper: wrapper(server.url, token) },
    );
    await waitFor(() => expect(chart.result.current.status).toBe('live'));
    const values = () => chart.result.current.series.flatMap((s) => s.points.map((p) => p.value));
    expect(chart.result.current.series.map((s) => [s.key, s.series])).toEqual([
      ['followers:instagram:brand', 'count'],
    ]);
    expect(values()).toEqual([100, 101, 102, 103]);
    // The seam: the subscription's catch-up repeats the point at `until` (103); it is not doubled.
    expect(chart.result.current.until).toBe(at(10));

    // NOTE: distinct times: points are identified by (key, series, at), so two values stamped in the
    // same millisecond are one point (the later wins), as the server's latest value does.
    await publish(104, at(2));
    await publish(105, at(1));
    await waitFor(() => expect(values()).toEqual([100, 101, 102, 103, 104, 105]));
    const times = chart.result.current.series[0]!.points.map((p) => p.at);
    expect([...times].sort()).toEqual(times);
    expect(new Set(times).size).toBe(times.length);
  });

  it('adds live values after the seam into their buckets and skips those the bucket read counted', () => {
    const minute = Date.parse('2026-01-01T10:05:00.000Z');
    const history = [
      {
        key: 'followers:x:brand',
        series: 'count',
        kind: 'followers',
        platform: 'x',
        accountId: 'brand',
        points: [{ at: new Date(minute).toISOString(), value: 12, min: 10, max: 12, count: 2, sum: 22 }],
      },
    ];
    const until = new Date(minute + 20_000).toISOString();
    const id = 'followers:x:brand\u0000count';
    const live = {
      meta: {
        [id]: {
          key: 'followers:x:brand',
          series: 'count',
          kind: 'followers',
          platform: 'x',
          accountId: 'brand',
        },
      },
      points: { [id]: { [minute + 20_000]: 12, [minute + 40_000]: 9, [minute + 70_000]: 15 } },
    };
    const [merged] = mergeDashboardSeries(history, live, '1m', until);
    expect(merged!.points).toEqual([
      // the point at `until` was already in the bucket: 9 is added, 12 is not added again
      { at: new Date(minute).toISOString(), value: 9, min: 9, max: 12, count: 3, sum: 31 },
      { at: new Date(minute + 60_000).toISOString(), value: 15, min: 15, max: 15, count: 1, sum: 15 },
    ]);
  });

  it('a window outside the workspace is an error state with code FORBIDDEN', async () => {
    await using server = await startServer();
    const token = await server.token({ sub: 'eve', workspaces: { globex: 'member' } });
    const eve = renderHook(() => useDashboardHistory('acme', { kind: 'followers' }), {
      wrapper: wrapper(server.url, token),
    });
    await waitFor(() => expect(eve.result.current.status).toBe('error'));
    expect(eve.result.current.error?.context).toMatchObject({ code: 'FORBIDDEN' });
    expect(eve.result.current.series).toEqual([]);
  });
});
