import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  collect,
  connectClient,
  startTestServer,
  codeOf,
  issuesOf,
  storeEngines,
  waitFor,
} from '../../test/support/vitest.js';
import { createMemoryBus } from '../infra/bus/memory-bus.js';
import { createStore } from '../infra/store/db.js';
import type { DashboardEvent, DashboardUpdateEvent } from './dashboard.schema.js';

const engines = await storeEngines();
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** A deterministic series: one value every 17 s over `hours`, starting on an hour boundary. */
function generate(startMs: number, hours: number) {
  const points: Array<{ atMs: number; value: number }> = [];
  for (let t = startMs, i = 0; t < startMs + hours * HOUR; t += 17_000, i += 1) {
    points.push({ atMs: t, value: ((i * 7919) % 1000) - 200 + (i % 3) * 0.25 });
  }
  return points;
}

/** What the buckets of `points` must hold, computed independently of the server. */
function expectedBuckets(points: Array<{ atMs: number; value: number }>, width: number) {
  const buckets = new Map<
    number,
    { at: string; value: number; min: number; max: number; count: number; sum: number }
  >();
  for (const p of points) {
    const start = Math.floor(p.atMs / width) * width;
    const b = buckets.get(start);
    if (!b) {
      buckets.set(start, {
        at: new Date(start).toISOString(),
        value: p.value,
        min: p.value,
        max: p.value,
        count: 1,
        sum: p.value,
      });
      continue;
    }
    b.count += 1;
    b.sum += p.value;
    b.min = Math.min(b.min, p.value);
    b.max = Math.max(b.max, p.value);
    b.value = p.value;
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b);
}

/** Sums are floating point: compare them to a few decimals. */
function rounded<T extends { sum: number }>(points: T[]) {
  return points.map((p) => ({ ...p, sum: Math.round(p.sum * 1000) / 1000 }));
}

const metric = (value: number, atMs: number, accountId = 'brand') => ({
  workspaceId: 'acme',
  kind: 'metric' as const,
  platform: 'instagram' as const,
  accountId,
  metric: 'impressions',
  value,
  at: new Date(atMs).toISOString(),
});

describe.each(engines)('dashboard history on $name', (engine) => {
  it.skipIf(engine.unavailable)(
    'raw points and 1-minute / 1-hour buckets are exact for a generated series, before and after the rollup',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({
        ...store.options,
        dashboardHistory: { rollupMs: 0, settleMs: 0, rawRetentionMs: 24 * HOUR },
      });
      const admin = connectClient(server, await server.token({ sub: 'ada', workspaces: { acme: 'admin' } }));
      await using _admin = admin;
      const start = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
      const series = generate(start, 3);
      // Out of order on purpose: history is by measurement time, whatever the publish order.
      const shuffled = [...series].sort((a, b) => (a.atMs % 7) - (b.atMs % 7) || a.atMs - b.atMs);
      for (const p of shuffled) await server.services.dashboard.publish(metric(p.value, p.atMs));
      // Another account and another kind stay out of a filtered read.
      await server.services.dashboard.publish(metric(5, start + 10, 'other'));
      await server.services.dashboard.publish({
        workspaceId: 'acme',
        kind: 'followers',
        platform: 'instagram',
        accountId: 'brand',
        count: 10,
        at: new Date(start).toISOString(),
      });

      const read = (bucket: 'raw' | '1m' | '1h') =>
        admin.trpc.dashboard.history.query({
          workspaceId: 'acme',
          kind: 'metric',
          platform: 'instagram',
          accountId: 'brand',
          metric: 'impressions',
          from: new Date(start).toISOString(),
          to: new Date(start + 3 * HOUR).toISOString(),
          bucket,
        });
      const check = async () => {
        const raw = await read('raw');
        expect(raw.series).toHaveLength(1);
        expect(raw.series[0]).toMatchObject({
          key: 'metric:instagram:brand:impressions',
          series: 'impressions',
          accountId: 'brand',
        });
        expect(raw.series[0]?.points.map((p) => [p.at, p.value])).toEqual(
          series.map((p) => [new Date(p.atMs).toISOString(), p.value]),
        );
        expect(raw.until).toBe(new Date(series.at(-1)?.atMs ?? 0).toISOString());
        for (const [bucket, width] of [
          ['1m', MINUTE],
          ['1h', HOUR],
        ] as const) {
          const result = await read(bucket);
          expect(result.series).toHaveLength(1);
          expect(rounded(result.series[0]?.points ?? [])).toEqual(rounded(expectedBuckets(series, width)));
        }
      };
      // Nothing rolled up yet: the buckets come from raw points alone.
      await check();
      // Half rolled up, half pending: stored buckets and pending points merge.
      expect(await server.services.dashboard.rollup()).toBe(series.length + 2);
      await check();
      const more = generate(start + 3 * HOUR - 20 * MINUTE, 1).slice(0, 30);
      for (const p of more) await server.services.dashboard.publish(metric(p.value, p.atMs));
      series.push(...more.filter((p) => p.atMs < start + 3 * HOUR));
      series.sort((a, b) => a.atMs - b.atMs);
      // Equal times: the later stored value is `last`; the generated ones never collide.
      expect(new Set(series.map((p) => p.atMs)).size).toBe(series.length);
      await check();
      expect(await server.services.dashboard.rollup()).toBe(more.length);
      await check();
      // A rollup with nothing new changes nothing (the watermark held).
      expect(await server.services.dashboard.rollup()).toBe(0);
      await check();
    },
  );

  it.skipIf(engine.unavailable)(
    'retention prunes raw points past their window while the buckets keep the history; bad input is BAD_REQUEST',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({
        ...store.options,
        dashboardHistory: { rollupMs: 0, settleMs: 0, rawRetentionMs: HOUR, minuteRetentionMs: 6 * HOUR },
      });
      await using admin = connectClient(
        server,
        await server.token({ sub: 'ada', workspaces: { acme: 'admin' } }),
      );
      const start = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;
      const series = generate(start, 2);
      for (const p of series) await server.services.dashboard.publish(metric(p.value, p.atMs));
      await server.services.dashboard.rollup();
      const window = { workspaceId: 'acme', kind: 'metric' as const, from: new Date(start).toISOString() };
      expect((await admin.trpc.dashboard.history.query({ ...window, bucket: 'raw' })).series).toEqual([]);
      const minutes = await admin.trpc.dashboard.history.query({ ...window, bucket: '1m' });
      expect(rounded(minutes.series[0]?.points ?? [])).toEqual(rounded(expectedBuckets(series, MINUTE)));
      // Much later: the minute buckets are past their retention too; hour buckets remain.
      await server.services.dashboard.rollup(Date.now() + 10 * HOUR);
      expect((await admin.trpc.dashboard.history.query({ ...window, bucket: '1m' })).series).toEqual([]);
      const hours = await admin.trpc.dashboard.history.query({ ...window, bucket: '1h' });
      expect(rounded(hours.series[0]?.points ?? [])).toEqual(rounded(expectedBuckets(series, HOUR)));

      const badBucket = await admin.trpc.dashboard.history
        .query({ ...window, bucket: '5m' as '1m' })
        .catch((e: unknown) => e);
      expect(codeOf(badBucket)).toBe('BAD_REQUEST');
      expect(issuesOf(badBucket)[0]?.path).toEqual(['bucket']);
      const backwards = await admin.trpc.dashboard.history
        .query({ ...window, to: new Date(start - HOUR).toISOString() })
        .catch((e: unknown) => e);
      expect(codeOf(backwards)).toBe('BAD_REQUEST');
      expect(issuesOf(backwards)[0]).toMatchObject({ path: ['from'], message: 'from must not be after to' });
      await using outsider = connectClient(
        server,
        await server.token({ sub: 'eve', workspaces: { globex: 'admin' } }),
      );
      const denied = await outsider.trpc.dashboard.history.query(window).catch((e: unknown) => e);
      expect(codeOf(denied)).toBe('FORBIDDEN');
    },
  );

  it.skipIf(engine.unavailable)(
    'two nodes rolling up the same points at once count each point once',
    async () => {
      await using store = await engine.setup();
      const bus = createMemoryBus();
      // NOTE: on SQLite both nodes share one connection: two connections of one process deadlock on
      // the file lock (better-sqlite3 waits synchronously, so the holder can never commit).
      const shared =
        engine.name === 'sqlite'
          ? createStore({ dataDir: store.options.config.dataDir, sqliteFile: store.options.sqliteFile })
          : undefined;
      await using _closeShared = { [Symbol.asyncDispose]: async () => shared?.close() };
      const options = {
        ...store.options,
        bus,
        ...(shared ? { store: shared } : {}),
        dashboardHistory: { rollupMs: 0, settleMs: 0 },
      };
      await using n1 = await startTestServer({ ...options, config: { ...options.config, nodeId: 'n1' } });
      await using n2 = await startTestServer({ ...options, config: { ...options.config, nodeId: 'n2' } });
      const start = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
      const series = generate(start, 1);
      await Promise.all(
        series.map((p, i) => (i % 2 ? n1 : n2).services.dashboard.publish(metric(p.value, p.atMs))),
      );
      const rolled = await Promise.all([n1.services.dashboard.rollup(), n2.services.dashboard.rollup()]);
      expect(rolled[0] + rolled[1]).toBe(series.length);
      const read = await n1.services.dashboard.readHistory({
        workspaceId: 'acme',
        kind: 'metric',
        from: new Date(start).toISOString(),
        bucket: '1m',
      });
      expect(rounded(read.series[0]?.points ?? [])).toEqual(rounded(expectedBuckets(series, MINUTE)));
    },
  );

  it.skipIf(engine.unavailable)(
    'history then onUpdate({ since: until }) meet without a gap; without since the values in between are lost',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({ ...store.options, dashboardHistory: { rollupMs: 0 } });
      await using viewer = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const t = Date.now() - 10 * MINUTE;
      await server.services.dashboard.publish(metric(1, t));
      await server.services.dashboard.publish(metric(2, t + 1_000));
      const history = await viewer.trpc.dashboard.history.query({
        workspaceId: 'acme',
        kind: 'metric',
        from: new Date(t - HOUR).toISOString(),
        bucket: 'raw',
      });
      expect(history.until).toBe(new Date(t + 1_000).toISOString());
      // Values land between the history read and the subscription.
      await server.services.dashboard.publish(metric(3, t + 2_000));
      await server.services.dashboard.publish(metric(4, t + 3_000));

      const merged = (events: DashboardEvent[]) => {
        const points = new Map<string, number>();
        for (const p of history.series[0]?.points ?? []) points.set(p.at, p.value);
        for (const e of events) {
          const updates = e.type === 'snapshot' ? e.updates : [e];
          for (const u of updates) if (u.kind === 'metric') points.set(u.at, u.value);
        }
        return [...points.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v);
      };
      const withSince = collect<DashboardEvent>();
      const withoutSince = collect<DashboardEvent>();
      viewer.trpc.dashboard.onUpdate.subscribe(
        { workspaceId: 'acme', kinds: ['metric'], since: history.until },
        withSince,
      );
      viewer.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'acme', kinds: ['metric'] }, withoutSince);
      await waitFor(() => expect(withSince.items.length).toBeGreaterThanOrEqual(4));
      await waitFor(() => expect(withoutSince.items.length).toBeGreaterThanOrEqual(1));
      await server.services.dashboard.publish(metric(5, t + 4_000));
      await waitFor(() => expect(merged(withSince.items)).toEqual([1, 2, 3, 4, 5]));
      await waitFor(() =>
        expect((withoutSince.items.at(-1) as DashboardUpdateEvent | undefined)?.at).toBe(
          new Date(t + 4_000).toISOString(),
        ),
      );
      // The snapshot holds only the latest value per key: value 3 fell into the gap.
      expect(merged(withoutSince.items)).toEqual([1, 2, 4, 5]);
      // On the wire, the only repeat is the point at `until` itself (merged by (key, at)).
      const wire = withSince.items.filter((e): e is DashboardUpdateEvent => e.type === 'update');
      expect(wire.map((e) => e.at)).toEqual(
        [t + 1_000, t + 2_000, t + 3_000, t + 4_000].map((ms) => new Date(ms).toISOString()),
      );
      expect(withSince.errors).toEqual([]);
    },
  );

  it.skipIf(engine.unavailable)(
    'the seam holds while values keep arriving during the history read',
    async () => {
      await using store = await engine.setup();
      await using server = await startTestServer({ ...store.options, dashboardHistory: { rollupMs: 0 } });
      await using viewer = connectClient(
        server,
        await server.token({ sub: 'bob', workspaces: { acme: 'member' } }),
      );
      const base = Date.now() - MINUTE;
      let n = 0;
      let running = true;
      const published: number[] = [];
      const writer = (async () => {
        while (running || n < 40) {
          n += 1;
          const value = n;
          await server.services.dashboard.publish(metric(value, base + value * 10));
          published.push(value);
          // A turn of the event loop now and then (the history read and the subscription need it).
          if (n % 5 === 0) await yieldToEventLoop();
        }
      })();
      await waitFor(() => expect(n).toBeGreaterThan(10));
      const history = await viewer.trpc.dashboard.history.query({
        workspaceId: 'acme',
        kind: 'metric',
        from: new Date(base).toISOString(),
        bucket: 'raw',
      });
      const live = collect<DashboardEvent>();
      viewer.trpc.dashboard.onUpdate.subscribe({ workspaceId: 'acme', since: history.until }, live);
      await waitFor(() => expect(live.items.length).toBeGreaterThan(0));
      running = false;
      await writer;
      const points = new Map<string, number>();
      for (const p of history.series[0]?.points ?? []) points.set(p.at, p.value);
      await waitFor(() => {
        for (const e of live.items) if (e.type === 'update' && e.kind === 'metric') points.set(e.at, e.value);
        expect(points.size).toBe(published.length);
      });
      expect([...points.values()].sort((a, b) => a - b)).toEqual([...published].sort((a, b) => a - b));
    },
  );
});
