import { TRPCError } from '@trpc/server';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type { Hub } from '../infra/hub.js';
import { type LiveItem, type LiveStream, liveEphemeral } from '../infra/live.js';
import { ReadBatch } from '../infra/read-batch.js';
import type { Store } from '../infra/store/db.js';
import {
  type Aggregate,
  addToAggregates,
  type DashboardHistory,
  type AnyDashboardHistoryInput,
  type DashboardHistoryInput,
  type DashboardPoint,
  type DashboardSeries,
  dashboardBucketWidthMs,
  dashboardHistoryInput,
  merge,
  seriesOf,
} from './dashboard.history.js';
import {
  type AnyDashboardFilter,
  type AnyDashboardPublishInput,
  type DashboardEvent,
  type DashboardPublishInput,
  type DashboardPublishResult,
  type DashboardSnapshot,
  type DashboardUpdate,
  type DashboardUpdateEvent,
  dashboardPublishInput,
  dashboardValueKey,
} from './dashboard.schema.js';
import type { DashboardHistoryTables, DashboardTables } from './dashboard.tables.js';

export const dashboardTopic = (workspaceId: string) => `dashboard:${workspaceId}`;

/** A slow dashboard subscriber keeps the latest snapshot and the latest value per key (shared: no closure per subscriber). */
const dashboardCoalesceKey = (event: DashboardEvent): string => (event.type === 'snapshot' ? '*' : event.key);

/** Values a snapshot returns at most (the newest ones). */
const SNAPSHOT_LIMIT = 5_000;

/** How long history is kept and how often it is rolled up into buckets. */
export interface DashboardHistoryOptions {
  /** Raw points are kept this long (by measurement time; default 2 h). */
  rawRetentionMs?: number;
  /** 1-minute buckets (default 48 h). */
  minuteRetentionMs?: number;
  /** 1-hour buckets (default 90 days). */
  hourRetentionMs?: number;
  /** How often each node rolls new raw points into buckets (default 10 s; 0 = only `rollup()` calls). */
  rollupMs?: number;
  /** Points stored less than this long ago wait for the next rollup (default 2 s; see NOTE in `rollup`). */
  settleMs?: number;
}

export interface DashboardServiceOptions {
  hub: Hub;
  store: Store;
  history?: DashboardHistoryOptions;
  onError?: (error: unknown) => void;
}

/**
 * How far ahead of this node's clock a value's `at` may be. Later ones are clamped to it: a value
 * stamped in year 9999 would otherwise make every later value look out of date, forever.
 */
export const DASHBOARD_MAX_CLOCK_SKEW_MS = 2_000;

type Tables = DashboardTables & DashboardHistoryTables;

/** Points a history read returns at most per call (raw) and a catch-up replays at most. */
const HISTORY_LIMIT = 50_000;
const CATCH_UP_LIMIT = 10_000;

class Rollback extends Error {}

/**
 * Live dashboards: latest value per key in the store, updates fanned out on `dashboard:<workspaceId>`,
 * and history: every value as a raw point, rolled up into 1-minute and 1-hour buckets.
 */
export class DashboardService {
  private readonly db: Kysely<Tables>;
  private readonly history: Required<DashboardHistoryOptions>;
  private readonly timer: NodeJS.Timeout | undefined;
  private rolling: Promise<number> | null = null;
  private closed = false;
  /**
   * First snapshots of subscriptions with the same filter asking together share one read, and one
   * serialisation (`json`: the WebSocket fast path writes it as is, not once per subscriber).
   */
  private readonly snapshots = new ReadBatch<LiveItem<DashboardSnapshot>>();

  constructor(private readonly opts: DashboardServiceOptions) {
    this.db = opts.store.db.withTables<Tables>();
    this.history = {
      rawRetentionMs: opts.history?.rawRetentionMs ?? 2 * 3_600_000,
      minuteRetentionMs: opts.history?.minuteRetentionMs ?? 48 * 3_600_000,
      hourRetentionMs: opts.history?.hourRetentionMs ?? 90 * 86_400_000,
      rollupMs: opts.history?.rollupMs ?? 10_000,
      settleMs: opts.history?.settleMs ?? 2_000,
    };
    if (this.history.rollupMs > 0) {
      this.timer = setInterval(() => {
        if (this.rolling || this.closed) return;
        void this.rollup().catch((error: unknown) => opts.onError?.(error));
      }, this.history.rollupMs);
      this.timer.unref();
    }
  }

  /**
   * Stores the value as the latest for its key and as a history point, then broadcasts it. A value
   * older than the stored one (by `at`) is kept in history but neither becomes the latest nor is
   * broadcast (`applied: false`). An `at` further ahead than `DASHBOARD_MAX_CLOCK_SKEW_MS` is
   * clamped to now + that skew.
   */
  async publish(
    input: DashboardPublishInput | AnyDashboardPublishInput,
    schema: z.ZodType = dashboardPublishInput,
  ): Promise<DashboardPublishResult> {
    // NOTE: `schema` is an app's publish union (`dashboardKinds(...).publishInput`); the default is
    // the seed kinds'. A bad value is BAD_REQUEST with the zod error as its cause (every caller:
    // procedures, `server.publish`, publishers).
    const parsed = schema.safeParse(input);
    if (!parsed.success)
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: z.prettifyError(parsed.error),
        cause: parsed.error,
      });
    const { workspaceId, at: rawAt, ...update } = parsed.data as z.output<typeof dashboardPublishInput>;
    const now = Date.now();
    const atMs = rawAt ? Math.min(new Date(rawAt).getTime(), now + DASHBOARD_MAX_CLOCK_SKEW_MS) : now;
    const at = new Date(atMs).toISOString();
    const key = dashboardValueKey(update);
    const event = { ...update, type: 'update', workspaceId, at, key } as DashboardUpdateEvent;
    const json = JSON.stringify(event);
    const point = {
      workspace_id: workspaceId,
      value_key: key,
      kind: update.kind,
      platform: update.platform ?? '',
      account_id: update.accountId ?? '',
      at_ms: Date.parse(at),
      created_ms: Date.now(),
      event: json,
    };
    const latest = (db: Kysely<Tables>) =>
      db
        .insertInto('pulse_dashboard_values')
        .values({
          workspace_id: workspaceId,
          value_key: key,
          kind: update.kind,
          platform: update.platform ?? '',
          at,
          event: json,
        })
        .onConflict((oc) =>
          oc
            .columns(['workspace_id', 'value_key'])
            .doUpdateSet((eb) => ({ at: eb.ref('excluded.at'), event: eb.ref('excluded.event') }))
            .where('pulse_dashboard_values.at', '<=', at),
        )
        .returning('value_key');
    let row: { value_key: string } | undefined;
    if (this.opts.store.dialect === 'postgres') {
      // NOTE: one statement per value on the hot path: the history point rides in a data-modifying
      // CTE of the latest-value upsert (one round trip, atomic).
      row = await this.db
        .with('point', (db) => db.insertInto('pulse_dashboard_points').values(point))
        .insertInto('pulse_dashboard_values')
        .values({
          workspace_id: workspaceId,
          value_key: key,
          kind: update.kind,
          platform: update.platform ?? '',
          at,
          event: json,
        })
        .onConflict((oc) =>
          oc
            .columns(['workspace_id', 'value_key'])
            .doUpdateSet((eb) => ({ at: eb.ref('excluded.at'), event: eb.ref('excluded.event') }))
            .where('pulse_dashboard_values.at', '<=', at),
        )
        .returning('value_key')
        .executeTakeFirst();
    } else {
      // NOTE: SQLite has no data-modifying CTEs: two in-process statements (no network round trip).
      await this.db.insertInto('pulse_dashboard_points').values(point).execute();
      row = await latest(this.db).executeTakeFirst();
    }
    if (!row) return { applied: false, event };
    await this.opts.hub.publish(dashboardTopic(workspaceId), event);
    return { applied: true, event };
  }

  /** Publishes one update to a workspace (publisher vocabulary). */
  broadcast(workspaceId: string, update: DashboardUpdate, at?: string): Promise<DashboardPublishResult> {
    return this.publish({ ...update, workspaceId, at } as DashboardPublishInput);
  }

  /** The latest value per kind/platform/account/metric key, optionally filtered. */
  async snapshot(filter: AnyDashboardFilter): Promise<DashboardSnapshot> {
    let query = this.db
      .selectFrom('pulse_dashboard_values')
      .select('event')
      .where('workspace_id', '=', filter.workspaceId);
    if (filter.kinds?.length) query = query.where('kind', 'in', filter.kinds);
    if (filter.platforms?.length) query = query.where('platform', 'in', filter.platforms);
    const rows = await query.orderBy('at', 'desc').orderBy('value_key').limit(SNAPSHOT_LIMIT).execute();
    return {
      type: 'snapshot',
      workspaceId: filter.workspaceId,
      at: new Date().toISOString(),
      updates: rows.map((r) => JSON.parse(r.event) as DashboardUpdateEvent).reverse(),
    };
  }

  /**
   * A snapshot, then every update matching the filter. With `since` (the `until` of a history
   * read), every stored update measured at or after it comes right after the snapshot, in time
   * order, before the live ones: history + this stream leave no gap at the seam. Slow sockets keep
   * only the latest per key.
   */
  onUpdate(filter: AnyDashboardFilter, signal?: AbortSignal): LiveStream<DashboardEvent> {
    const kinds = filter.kinds?.length ? new Set<string>(filter.kinds) : null;
    const platforms = filter.platforms?.length ? new Set<string>(filter.platforms) : null;
    return liveEphemeral<DashboardEvent>(this.opts.hub, {
      topic: dashboardTopic(filter.workspaceId),
      signal,
      filter:
        kinds || platforms
          ? (event) =>
              event.type === 'snapshot' ||
              ((!kinds || kinds.has(event.kind)) && (!platforms || platforms.has(event.platform)))
          : undefined,
      // NOTE: called after the hub subscription is live, so an update stored after the catch-up
      // read arrives live; one stored before it is in the read.
      initial: async () => [
        // NOTE: the same item for every subscriber of the batch (items are never mutated).
        await this.snapshots.get(
          JSON.stringify([filter.workspaceId, filter.kinds ?? [], filter.platforms ?? []]),
          async () => {
            const data = await this.snapshot(filter);
            return { data, json: JSON.stringify(data) };
          },
        ),
        ...(filter.since ? (await this.since(filter, filter.since)).map((data) => ({ data })) : []),
      ],
      coalesceKey: dashboardCoalesceKey,
    });
  }

  /**
   * A window of history for one kind (optionally one platform, account and series): raw points,
   * or 1-minute / 1-hour buckets (stored buckets plus the points not rolled up yet, so the newest
   * bucket is complete up to the read). `until` is where a live subscription picks up.
   */
  async readHistory(
    rawInput: DashboardHistoryInput | AnyDashboardHistoryInput,
    schema: {
      parse(input: unknown): z.output<typeof dashboardHistoryInput> | AnyParsedHistoryInput;
    } = dashboardHistoryInput,
  ): Promise<DashboardHistory> {
    // NOTE: `schema` is an app's history input (`dashboardKinds(...).historyInput`); the default is the seed kinds'.
    const input = schema.parse(rawInput);
    const fromMs = Date.parse(input.from);
    const toMs = input.to ? Date.parse(input.to) : Date.now();
    const read = async (db: Kysely<Tables>) => {
      const series = new Map<string, Aggregate[]>();
      let newest = -1;
      const rawQuery = (rolledId: number | null, startMs: number) => {
        let query = db
          .selectFrom('pulse_dashboard_points')
          .select(['id', 'value_key', 'kind', 'platform', 'account_id', 'at_ms', 'event'])
          .where('workspace_id', '=', input.workspaceId)
          .where('kind', '=', input.kind)
          .where('at_ms', '>=', startMs)
          .where('at_ms', '<=', toMs);
        if (rolledId !== null) query = query.where('id', '>', rolledId);
        if (input.platform) query = query.where('platform', '=', input.platform);
        if (input.accountId) query = query.where('account_id', '=', input.accountId);
        return query.orderBy('at_ms').orderBy('id').limit(HISTORY_LIMIT).execute();
      };
      const aggregates = new Map<string, Aggregate>();
      if (input.bucket === 'raw') {
        for (const row of await rawQuery(null, fromMs)) {
          const atMs = Number(row.at_ms);
          newest = Math.max(newest, atMs);
          const values = pick(seriesOf(JSON.parse(row.event) as DashboardUpdateEvent), input.metric);
          for (const [name, value] of Object.entries(values)) {
            const list = series.get(`${row.value_key}\u0000${name}`) ?? [];
            list.push({
              key: row.value_key,
              series: name,
              kind: row.kind,
              platform: row.platform,
              accountId: row.account_id,
              startMs: atMs,
              count: 1,
              sum: value,
              min: value,
              max: value,
              last: value,
              lastAtMs: atMs,
            });
            series.set(`${row.value_key}\u0000${name}`, list);
          }
        }
      } else {
        const width = dashboardBucketWidthMs[input.bucket];
        const startMs = Math.floor(fromMs / width) * width;
        const rollup = await db
          .selectFrom('pulse_dashboard_rollup')
          .select('rolled_id')
          .where('id', '=', 'rollup')
          .executeTakeFirst();
        const rolledId = Number(rollup?.rolled_id ?? 0);
        let query = db
          .selectFrom('pulse_dashboard_buckets')
          .selectAll()
          .where('workspace_id', '=', input.workspaceId)
          .where('kind', '=', input.kind)
          .where('width', '=', input.bucket)
          .where('start_ms', '>=', startMs)
          .where('start_ms', '<=', toMs);
        if (input.platform) query = query.where('platform', '=', input.platform);
        if (input.accountId) query = query.where('account_id', '=', input.accountId);
        if (input.metric) query = query.where('series', '=', input.metric);
        for (const b of await query.orderBy('start_ms').limit(HISTORY_LIMIT).execute()) {
          const aggregate: Aggregate = {
            key: b.value_key,
            series: b.series,
            kind: b.kind,
            platform: b.platform,
            accountId: b.account_id,
            startMs: Number(b.start_ms),
            count: Number(b.count),
            sum: Number(b.sum),
            min: Number(b.min),
            max: Number(b.max),
            last: Number(b.last),
            lastAtMs: Number(b.last_at_ms),
          };
          newest = Math.max(newest, aggregate.lastAtMs);
          aggregates.set(`${b.value_key}\u0000${b.series}\u0000${aggregate.startMs}`, aggregate);
        }
        // Points not rolled up yet complete the buckets (the newest ones above all).
        const pending = new Map<string, Aggregate>();
        for (const row of await rawQuery(rolledId, startMs)) {
          const atMs = Number(row.at_ms);
          newest = Math.max(newest, atMs);
          const values = pick(seriesOf(JSON.parse(row.event) as DashboardUpdateEvent), input.metric);
          addToAggregates(
            pending,
            { key: row.value_key, kind: row.kind, platform: row.platform, accountId: row.account_id, atMs },
            values,
            width,
          );
        }
        for (const [id, aggregate] of pending) {
          const stored = aggregates.get(id);
          if (stored) merge(stored, aggregate);
          else aggregates.set(id, aggregate);
        }
        for (const aggregate of aggregates.values()) {
          const id = `${aggregate.key}\u0000${aggregate.series}`;
          const list = series.get(id) ?? [];
          list.push(aggregate);
          series.set(id, list);
        }
      }
      return { series, newest };
    };
    // NOTE: buckets, the watermark and the pending points must come from one snapshot, or a
    // rollup committing in between would count points twice (PostgreSQL: repeatable read).
    const { series, newest } =
      this.opts.store.dialect === 'postgres'
        ? await this.db
            .transaction()
            .setIsolationLevel('repeatable read')
            .execute((trx) => read(trx))
        : await this.db.transaction().execute((trx) => read(trx));
    const out: DashboardSeries[] = [...series.values()].map((list) => {
      const first = list[0] as Aggregate;
      list.sort((a, b) => a.startMs - b.startMs);
      return {
        key: first.key,
        series: first.series,
        kind: first.kind,
        platform: first.platform,
        accountId: first.accountId,
        points: list.map(
          (a): DashboardPoint => ({
            at: new Date(a.startMs).toISOString(),
            value: a.last,
            min: a.min,
            max: a.max,
            count: a.count,
            sum: a.sum,
          }),
        ),
      };
    });
    out.sort((a, b) => (a.key === b.key ? a.series.localeCompare(b.series) : a.key.localeCompare(b.key)));
    return {
      workspaceId: input.workspaceId,
      bucket: input.bucket,
      series: out,
      until: new Date(newest >= 0 ? newest : fromMs).toISOString(),
    };
  }

  /**
   * Rolls raw points stored since the last rollup into the 1-minute and 1-hour buckets, then prunes
   * what fell out of retention. Any node may run it: the watermark moves with a conditional UPDATE
   * in the same transaction as the bucket upserts, so each point is added to its buckets once.
   * Returns how many points it rolled up.
   */
  rollup(now = Date.now()): Promise<number> {
    if (this.rolling) return this.rolling.then(() => this.rollup(now));
    this.rolling = this.rollOnce(now).finally(() => {
      this.rolling = null;
    });
    return this.rolling;
  }

  /** Stops the rollup timer (after the pass under way). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.rolling?.catch(() => undefined);
  }

  private async rollOnce(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const state = await this.db
        .selectFrom('pulse_dashboard_rollup')
        .select('rolled_id')
        .where('id', '=', 'rollup')
        .executeTakeFirst();
      const rolledId = Number(state?.rolled_id ?? 0);
      // NOTE: on PostgreSQL ids are allocated before commit, so a point could commit after a higher
      // id; waiting `settleMs` after the insert makes the watermark pass only settled points (one
      // autocommitted statement each, committed within milliseconds).
      const rows = await this.db
        .selectFrom('pulse_dashboard_points')
        .select(['id', 'workspace_id', 'value_key', 'kind', 'platform', 'account_id', 'at_ms', 'event'])
        .where('id', '>', rolledId)
        .where('created_ms', '<=', now - this.history.settleMs)
        .orderBy('id')
        .limit(2_000)
        .execute();
      if (rows.length === 0) break;
      const lastId = Number(rows.at(-1)?.id);
      const buckets = new Map<string, Aggregate & { workspaceId: string; width: string }>();
      for (const width of ['1m', '1h'] as const) {
        const byWorkspace = new Map<string, Map<string, Aggregate>>();
        for (const row of rows) {
          const map = byWorkspace.get(row.workspace_id) ?? new Map<string, Aggregate>();
          byWorkspace.set(row.workspace_id, map);
          addToAggregates(
            map,
            {
              key: row.value_key,
              kind: row.kind,
              platform: row.platform,
              accountId: row.account_id,
              atMs: Number(row.at_ms),
            },
            seriesOf(JSON.parse(row.event) as DashboardUpdateEvent),
            dashboardBucketWidthMs[width],
          );
        }
        for (const [workspaceId, map] of byWorkspace) {
          for (const [id, aggregate] of map)
            buckets.set(`${workspaceId}\u0000${width}\u0000${id}`, { ...aggregate, workspaceId, width });
        }
      }
      const pg = this.opts.store.dialect === 'postgres';
      const least = pg ? 'least' : 'min';
      const greatest = pg ? 'greatest' : 'max';
      try {
        await this.db.transaction().execute(async (trx) => {
          const claimed = await trx
            .updateTable('pulse_dashboard_rollup')
            .set({ rolled_id: lastId, updated_ms: now })
            .where('id', '=', 'rollup')
            .where('rolled_id', '=', rolledId)
            .executeTakeFirst();
          if (Number(claimed.numUpdatedRows) === 0) throw new Rollback();
          // NOTE: sorted, so concurrent transactions lock bucket rows in one order.
          const list = [...buckets.values()].sort((a, b) =>
            a.workspaceId === b.workspaceId
              ? `${a.key}${a.series}${a.width}${a.startMs}`.localeCompare(
                  `${b.key}${b.series}${b.width}${b.startMs}`,
                )
              : a.workspaceId.localeCompare(b.workspaceId),
          );
          for (let start = 0; start < list.length; start += 200) {
            await trx
              .insertInto('pulse_dashboard_buckets')
              .values(
                list.slice(start, start + 200).map((b) => ({
                  workspace_id: b.workspaceId,
                  value_key: b.key,
                  series: b.series,
                  width: b.width,
                  start_ms: b.startMs,
                  kind: b.kind,
                  platform: b.platform,
                  account_id: b.accountId,
                  count: b.count,
                  sum: b.sum,
                  min: b.min,
                  max: b.max,
                  last: b.last,
                  last_at_ms: b.lastAtMs,
                })),
              )
              .onConflict((oc) =>
                oc.columns(['workspace_id', 'value_key', 'series', 'width', 'start_ms']).doUpdateSet({
                  count: sql`pulse_dashboard_buckets.count + excluded.count`,
                  sum: sql`pulse_dashboard_buckets.sum + excluded.sum`,
                  min: sql`${sql.raw(least)}(pulse_dashboard_buckets.min, excluded.min)`,
                  max: sql`${sql.raw(greatest)}(pulse_dashboard_buckets.max, excluded.max)`,
                  last: sql`case when excluded.last_at_ms >= pulse_dashboard_buckets.last_at_ms then excluded.last else pulse_dashboard_buckets.last end`,
                  last_at_ms: sql`${sql.raw(greatest)}(pulse_dashboard_buckets.last_at_ms, excluded.last_at_ms)`,
                }),
              )
              .execute();
          }
        });
      } catch (error) {
        if (error instanceof Rollback) continue; // another node moved the watermark: read again
        throw error;
      }
      total += rows.length;
      if (rows.length < 2_000 || this.closed) break;
    }
    await this.prune(now);
    return total;
  }

  private async prune(now: number): Promise<void> {
    const state = await this.db
      .selectFrom('pulse_dashboard_rollup')
      .select('rolled_id')
      .where('id', '=', 'rollup')
      .executeTakeFirst();
    await this.db
      .deleteFrom('pulse_dashboard_points')
      .where('at_ms', '<', now - this.history.rawRetentionMs)
      .where('id', '<=', Number(state?.rolled_id ?? 0))
      .execute();
    await this.db
      .deleteFrom('pulse_dashboard_buckets')
      .where('width', '=', '1m')
      .where('start_ms', '<', now - this.history.minuteRetentionMs)
      .execute();
    await this.db
      .deleteFrom('pulse_dashboard_buckets')
      .where('width', '=', '1h')
      .where('start_ms', '<', now - this.history.hourRetentionMs)
      .execute();
  }

  /** Stored updates measured at or after `since`, in time order (the catch-up of `onUpdate`). */
  private async since(filter: AnyDashboardFilter, since: string): Promise<DashboardUpdateEvent[]> {
    let query = this.db
      .selectFrom('pulse_dashboard_points')
      .select('event')
      .where('workspace_id', '=', filter.workspaceId)
      .where('at_ms', '>=', Date.parse(since));
    if (filter.kinds?.length) query = query.where('kind', 'in', filter.kinds);
    if (filter.platforms?.length) query = query.where('platform', 'in', filter.platforms);
    const rows = await query.orderBy('at_ms').orderBy('id').limit(CATCH_UP_LIMIT).execute();
    return rows.map((row) => JSON.parse(row.event) as DashboardUpdateEvent);
  }
}

type AnyParsedHistoryInput = Omit<z.output<typeof dashboardHistoryInput>, 'kind'> & { kind: string };

/** Only the named series (or all). */
function pick(values: Record<string, number>, name: string | undefined): Record<string, number> {
  if (name === undefined) return values;
  return name in values ? { [name]: values[name] as number } : {};
}
