import type { Kysely, Migration } from 'kysely';
import type { Hub } from '../infra/hub.js';
import { type LiveStream, liveEphemeral } from '../infra/live.js';
import type { Store } from '../infra/store/db.js';
import {
  type DashboardEvent,
  type DashboardFilter,
  type DashboardPublishInput,
  type DashboardPublishResult,
  type DashboardSnapshot,
  type DashboardUpdate,
  type DashboardUpdateEvent,
  dashboardPublishInput,
  dashboardValueKey,
} from './dashboard.schema.js';

/** Latest value per (workspace, key): every node answers the same snapshot. */
export type DashboardTables = {
  dashboard_values: {
    workspace_id: string;
    value_key: string;
    kind: string;
    platform: string;
    /** ISO time of the measurement; an older one never replaces a newer one. */
    at: string;
    /** The full update event as JSON. */
    event: string;
  };
};

export const dashboardMigrations: Record<string, Migration> = {
  '0200_dashboard': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dashboard_values')
        .ifNotExists()
        .addColumn('workspace_id', 'text', (c) => c.notNull())
        .addColumn('value_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('dashboard_values_pk', ['workspace_id', 'value_key'])
        .execute();
    },
  },
};

export const dashboardTopic = (workspaceId: string) => `dashboard:${workspaceId}`;

/** Values a snapshot returns at most (the newest ones). */
const SNAPSHOT_LIMIT = 5_000;

export interface DashboardServiceOptions {
  hub: Hub;
  store: Store;
}

/**
 * How far ahead of this node's clock a value's `at` may be. Later ones are clamped to it: a value
 * stamped in year 9999 would otherwise make every later value look out of date, forever.
 */
export const DASHBOARD_MAX_CLOCK_SKEW_MS = 2_000;

/** Live dashboards: latest value per key in the store, updates fanned out on `dashboard:<workspaceId>`. */
export class DashboardService {
  private readonly db: Kysely<DashboardTables>;

  constructor(private readonly opts: DashboardServiceOptions) {
    this.db = opts.store.db.withTables<DashboardTables>();
  }

  /**
   * Stores the value as the latest for its key and broadcasts it. A value older than the stored one
   * (by `at`) is neither stored nor broadcast (`applied: false`). An `at` further ahead than
   * `DASHBOARD_MAX_CLOCK_SKEW_MS` is clamped to now + that skew.
   */
  async publish(input: DashboardPublishInput): Promise<DashboardPublishResult> {
    const { workspaceId, at: rawAt, ...update } = dashboardPublishInput.parse(input);
    const now = Date.now();
    const atMs = rawAt ? Math.min(new Date(rawAt).getTime(), now + DASHBOARD_MAX_CLOCK_SKEW_MS) : now;
    const at = new Date(atMs).toISOString();
    const key = dashboardValueKey(update);
    const event = { ...update, type: 'update', workspaceId, at, key } as DashboardUpdateEvent;
    const json = JSON.stringify(event);
    const row = await this.db
      .insertInto('dashboard_values')
      .values({
        workspace_id: workspaceId,
        value_key: key,
        kind: update.kind,
        platform: update.platform,
        at,
        event: json,
      })
      .onConflict((oc) =>
        oc
          .columns(['workspace_id', 'value_key'])
          .doUpdateSet((eb) => ({ at: eb.ref('excluded.at'), event: eb.ref('excluded.event') }))
          .where('dashboard_values.at', '<=', at),
      )
      .returning('value_key')
      .executeTakeFirst();
    if (!row) return { applied: false, event };
    await this.opts.hub.publish(dashboardTopic(workspaceId), event);
    return { applied: true, event };
  }

  /** Publishes one update to a workspace (publisher vocabulary). */
  broadcast(workspaceId: string, update: DashboardUpdate, at?: string): Promise<DashboardPublishResult> {
    return this.publish({ ...update, workspaceId, at } as DashboardPublishInput);
  }

  /** The latest value per kind/platform/account/metric key, optionally filtered. */
  async snapshot(filter: DashboardFilter): Promise<DashboardSnapshot> {
    let query = this.db
      .selectFrom('dashboard_values')
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

  /** A snapshot, then every update matching the filter. Slow sockets keep only the latest per key. */
  onUpdate(filter: DashboardFilter, signal?: AbortSignal): LiveStream<DashboardEvent> {
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
      initial: async () => [{ data: await this.snapshot(filter) }],
      coalesceKey: (event) => (event.type === 'snapshot' ? '*' : event.key),
    });
  }
}
