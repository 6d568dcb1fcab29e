import { TRPCClientError } from '@trpc/client';
import { describe, expect, it, vi } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  createTestDatabase,
  postgresUnavailable,
} from '../../test/support/vitest.js';
import type { PulseConfigInput } from '../config.js';
import type { AppRouter } from '../router.js';
import type { DashboardEvent } from './dashboard.schema.js';
import { DASHBOARD_MAX_CLOCK_SKEW_MS } from './dashboard.service.js';

const code = (error: unknown) => (error as TRPCClientError<AppRouter>).data?.code;

const pgDown = await postgresUnavailable();
/** Every test runs on SQLite and, when reachable (always in CI), on a private PostgreSQL database. */
const stores = pgDown === null ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);
type StoreKind = (typeof stores)[number];

/** A test server on the given store; disposing it also drops its PostgreSQL database. */
async function startOn(store: StoreKind, config: PulseConfigInput = {}) {
  const database = store === 'postgres' ? await createTestDatabase() : null;
  const server = await startTestServer({
    config: { ...config, ...(database ? { databaseUrl: database.url } : {}) },
  });
  const dispose = server[Symbol.asyncDispose];
  return Object.assign(server, {
    [Symbol.asyncDispose]: async () => {
      await dispose();
      await database?.drop();
    },
  });
}

describe.each(stores)('dashboard on %s', (store) => {
  it('sends a snapshot of the latest values first, then live updates; the snapshot query agrees', async () => {
    await using server = await startOn(store);
    await using alice = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'member' } }),
    );
    const acme = { workspaceId: 'acme' };
    await server.caller.dashboard.publish({
      ...acme,
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 100,
    });
    await server.caller.dashboard.publish({
      ...acme,
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 120,
      change: 20,
    });
    // An older measurement never replaces a newer one.
    const stale = await server.caller.dashboard.publish({
      ...acme,
      kind: 'followers',
      platform: 'instagram',
      accountId: 'brand',
      count: 1,
      at: '2001-01-01T00:00:00.000Z',
    });
    expect(stale.applied).toBe(false);

    const seen = collect<DashboardEvent>();
    const sub = alice.trpc.dashboard.onUpdate.subscribe(acme, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    expect(seen.items[0]).toMatchObject({
      type: 'snapshot',
      workspaceId: 'acme',
      updates: [
        { type: 'update', kind: 'followers', count: 120, change: 20, key: 'followers:instagram:brand' },
      ],
    });

    await server.caller.dashboard.publish({
      ...acme,
      kind: 'metric',
      platform: 'linkedin',
      accountId: 'brand',
      metric: 'impressions',
      value: 5000,
      change: 250,
    });
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    expect(seen.items[1]).toMatchObject({
      type: 'update',
      workspaceId: 'acme',
      kind: 'metric',
      platform: 'linkedin',
      metric: 'impressions',
      value: 5000,
      key: 'metric:linkedin:brand:impressions',
    });
    expect(typeof seen.items[1]?.at).toBe('string');

    const snapshot = await alice.trpc.dashboard.snapshot.query(acme);
    expect(snapshot.updates.map((u) => u.key).sort()).toEqual([
      'followers:instagram:brand',
      'metric:linkedin:brand:impressions',
    ]);
    sub.unsubscribe();
  });

  it('filters by kinds and platforms, in the snapshot and live', async () => {
    await using server = await startOn(store);
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'engagement',
      platform: 'tiktok',
      accountId: 'brand',
      postId: 'p1',
      likes: 10,
    });
    await server.caller.dashboard.publish({
      workspaceId: 'acme',
      kind: 'engagement',
      platform: 'youtube',
      accountId: 'brand',
      likes: 3,
    });
    const seen = collect<DashboardEvent>();
    const sub = bob.trpc.dashboard.onUpdate.subscribe(
      { workspaceId: 'acme', kinds: ['engagement', 'post'], platforms: ['tiktok'] },
      seen,
    );
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    expect(seen.items[0]).toMatchObject({
      type: 'snapshot',
      updates: [{ kind: 'engagement', platform: 'tiktok', postId: 'p1', likes: 10, comments: 0 }],
    });
    expect((seen.items[0] as { updates: unknown[] }).updates).toHaveLength(1);

    const publish = server.caller.dashboard.publish;
    await publish({
      workspaceId: 'acme',
      kind: 'followers',
      platform: 'tiktok',
      accountId: 'brand',
      count: 7,
    });
    await publish({
      workspaceId: 'acme',
      kind: 'post',
      platform: 'youtube',
      accountId: 'brand',
      postId: 'v1',
      status: 'published',
    });
    await publish({
      workspaceId: 'acme',
      kind: 'post',
      platform: 'tiktok',
      accountId: 'brand',
      postId: 'p2',
      status: 'published',
      metrics: { views: 900 },
    });
    await publish({
      workspaceId: 'acme',
      kind: 'analytics',
      platform: 'tiktok',
      accountId: 'brand',
      period: 'day',
      values: { reach: 1 },
    });
    await vi.waitFor(() => expect(seen.items).toHaveLength(2));
    // Barrier: a later tiktok post passes the filter; once it is there, nothing filtered out came.
    await publish({
      workspaceId: 'acme',
      kind: 'post',
      platform: 'tiktok',
      accountId: 'brand',
      postId: 'barrier',
      status: 'published',
    });
    await vi.waitFor(() => expect(seen.items).toHaveLength(3));
    expect(seen.items[2]).toMatchObject({ kind: 'post', platform: 'tiktok', postId: 'barrier' });
    expect(seen.items[1]).toMatchObject({
      kind: 'post',
      platform: 'tiktok',
      postId: 'p2',
      metrics: { views: 900 },
    });

    const filtered = await bob.trpc.dashboard.snapshot.query({ workspaceId: 'acme', platforms: ['youtube'] });
    expect(filtered.updates.map((u) => u.key).sort()).toEqual([
      'engagement:youtube:brand:*',
      'post:youtube:brand:v1',
    ]);
    sub.unsubscribe();
  });

  it('the publisher speaks the seed vocabulary: broadcast* methods reach subscribers', async () => {
    await using server = await startOn(store);
    await using bob = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    const seen = collect<DashboardEvent>();
    bob.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'acme' }, seen);
    await vi.waitFor(() => expect(seen.items).toHaveLength(1));
    const source = { workspaceId: 'acme', platform: 'x', accountId: 'brand' } as const;
    await server.publish.broadcastMetricUpdate({ ...source, metric: 'impressions', value: 10 });
    await server.publish.broadcastPostUpdate({ ...source, postId: 'p1', status: 'scheduled' });
    await server.publish.broadcastAnalyticsUpdate({ ...source, period: 'week', values: { reach: 5 } });
    await server.publish.broadcastFollowerUpdate({ ...source, count: 42, change: 2 });
    await server.publish.broadcastEngagementUpdate({ ...source, postId: 'p1', likes: 4, rate: 1.5 });
    await vi.waitFor(() => expect(seen.items).toHaveLength(6));
    expect(seen.items.slice(1).map((e) => (e.type === 'update' ? e.kind : e.type))).toEqual([
      'metric',
      'post',
      'analytics',
      'followers',
      'engagement',
    ]);
    const invalid = await server.publish
      .broadcastFollowerUpdate({ ...source, count: -1 })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(Error);
  });

  it('clamps a far-future `at` to now + the clock skew, so a year-9999 value never freezes its key', async () => {
    await using server = await startOn(store);
    await using admin = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    const value = {
      workspaceId: 'acme',
      kind: 'metric',
      platform: 'x',
      accountId: 'acc1',
      metric: 'reach',
    } as const;
    const before = Date.now();
    const frozen = await admin.trpc.dashboard.publish.mutate({
      ...value,
      value: 1,
      at: '9999-12-31T23:59:59.000Z',
    });
    expect(frozen.applied).toBe(true);
    expect(Date.parse(frozen.event.at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(frozen.event.at)).toBeLessThanOrEqual(Date.now() + DASHBOARD_MAX_CLOCK_SKEW_MS);
    // A value stamped just past the skew (a few seconds from now) is newer than the clamped one.
    const later = await admin.trpc.dashboard.publish.mutate({
      ...value,
      value: 2,
      at: new Date(Date.now() + DASHBOARD_MAX_CLOCK_SKEW_MS + 1_000).toISOString(),
    });
    expect(later.applied).toBe(true);
    const snapshot = await admin.trpc.dashboard.snapshot.query({ workspaceId: 'acme' });
    expect(snapshot.updates).toEqual([expect.objectContaining({ value: 2 })]);
  });

  it('another workspace sees nothing; a member cannot publish; a bad payload is rejected with its path', async () => {
    await using server = await startOn(store);
    await using member = connectClient(
      server,
      await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
    );
    await using admin = connectClient(
      server,
      await server.token({ sub: 'alice', workspaces: { acme: 'admin' } }),
    );
    await using eve = connectClient(
      server,
      await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }),
    );

    const eveSees = collect<DashboardEvent>();
    const eveSub = eve.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'globex' }, eveSees);
    const eveSneaks = collect<DashboardEvent>();
    eve.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'acme' }, eveSneaks);
    await vi.waitFor(() => expect(eveSees.items).toHaveLength(1));
    await vi.waitFor(() => expect(eveSneaks.errors).toHaveLength(1));
    expect(code(eveSneaks.errors[0])).toBe('FORBIDDEN');

    const metric = {
      workspaceId: 'acme',
      kind: 'metric',
      platform: 'facebook',
      accountId: 'page',
      metric: 'reach',
      value: 1,
    } as const;
    const denied = await member.trpc.dashboard.publish.mutate(metric).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(TRPCClientError);
    expect(code(denied)).toBe('FORBIDDEN');
    const snoop = await eve.trpc.dashboard.snapshot.query({ workspaceId: 'acme' }).catch((e: unknown) => e);
    expect(code(snoop)).toBe('FORBIDDEN');

    expect((await admin.trpc.dashboard.publish.mutate(metric)).applied).toBe(true);
    const bad = await admin.trpc.dashboard.publish
      .mutate({ ...metric, platform: 'myspace' as 'x' })
      .catch((e: unknown) => e);
    expect(code(bad)).toBe('BAD_REQUEST');
    expect((bad as TRPCClientError<AppRouter>).data).toMatchObject({
      issues: [expect.objectContaining({ path: ['platform'] })],
    });

    expect((await eve.trpc.dashboard.snapshot.query({ workspaceId: 'globex' })).updates).toEqual([]);
    // Barrier: a later globex update reaches eve; nothing of acme's came before it.
    await server.caller.dashboard.publish({ ...metric, workspaceId: 'globex', value: 2 });
    await vi.waitFor(() => expect(eveSees.items).toHaveLength(2));
    expect(eveSees.items[0]).toMatchObject({ type: 'snapshot', workspaceId: 'globex', updates: [] });
    expect(eveSees.items[1]).toMatchObject({ workspaceId: 'globex', kind: 'metric', value: 2 });
    eveSub.unsubscribe();
  });
});
