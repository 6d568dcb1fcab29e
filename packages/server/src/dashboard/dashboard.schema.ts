import { z } from 'zod';
import { idSchema } from '../auth/auth.schema.js';

/** Social platforms a dashboard value can come from. */
export const dashboardPlatformSchema = z.enum([
  'twitter',
  'x',
  'instagram',
  'facebook',
  'linkedin',
  'tiktok',
  'youtube',
  'threads',
  'pinterest',
]);
export type DashboardPlatform = z.infer<typeof dashboardPlatformSchema>;

/** Pulse's own dashboard kinds. */
export const seedDashboardKinds = ['metric', 'post', 'analytics', 'followers', 'engagement'] as const;
export const dashboardKindSchema = z.enum(seedDashboardKinds);
export type DashboardKind = z.infer<typeof dashboardKindSchema>;

/** A metric name such as `impressions` or `reach`: short, no separators used in value keys. */
const metricNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'must contain only letters, digits and _ . -');
/** Named numeric values, e.g. `{ likes: 12, comments: 3 }`. */
const valuesSchema = z
  .record(metricNameSchema, z.number().finite())
  .refine((v) => Object.keys(v).length <= 64, {
    message: 'at most 64 values',
  });

const source = { platform: dashboardPlatformSchema, accountId: idSchema };

/** One live number for an account: impressions, reach, profile views… */
export const metricUpdateSchema = z.object({
  kind: z.literal('metric'),
  ...source,
  metric: metricNameSchema,
  value: z.number().finite(),
  /** Change against the previous value or period (absolute). */
  change: z.number().finite().optional(),
  unit: z.enum(['count', 'percent', 'seconds', 'currency']).optional(),
});

/** A post's lifecycle and counters. */
export const postUpdateSchema = z.object({
  kind: z.literal('post'),
  ...source,
  postId: idSchema,
  status: z.enum(['draft', 'scheduled', 'publishing', 'published', 'failed', 'deleted']),
  title: z.string().max(300).optional(),
  url: z.url().max(2000).optional(),
  publishedAt: z.iso.datetime({ offset: true }).optional(),
  metrics: valuesSchema.optional(),
});

/** Aggregated analytics of an account over a period. */
export const analyticsUpdateSchema = z.object({
  kind: z.literal('analytics'),
  ...source,
  period: z.enum(['hour', 'day', 'week', 'month']),
  values: valuesSchema,
  /** Change per value against the previous period. */
  change: valuesSchema.optional(),
});

/** Follower count of an account. */
export const followersUpdateSchema = z.object({
  kind: z.literal('followers'),
  ...source,
  count: z.number().int().nonnegative(),
  change: z.number().int().optional(),
});

/** Engagement of an account, or of one post when `postId` is set. */
export const engagementUpdateSchema = z.object({
  kind: z.literal('engagement'),
  ...source,
  postId: idSchema.optional(),
  likes: z.number().int().nonnegative().default(0),
  comments: z.number().int().nonnegative().default(0),
  shares: z.number().int().nonnegative().default(0),
  saves: z.number().int().nonnegative().optional(),
  /** Engagement rate in percent. */
  rate: z.number().finite().nonnegative().optional(),
});

/** What a publisher sends (without `workspaceId`, `type`, `at`): one discriminated union on `kind`. */
export const dashboardUpdateSchema = z.discriminatedUnion('kind', [
  metricUpdateSchema,
  postUpdateSchema,
  analyticsUpdateSchema,
  followersUpdateSchema,
  engagementUpdateSchema,
]);
export type DashboardUpdate = z.input<typeof dashboardUpdateSchema>;
export type DashboardUpdateValue = z.output<typeof dashboardUpdateSchema>;
export type MetricUpdate = z.input<typeof metricUpdateSchema>;
export type PostUpdate = z.input<typeof postUpdateSchema>;
export type AnalyticsUpdate = z.input<typeof analyticsUpdateSchema>;
export type FollowersUpdate = z.input<typeof followersUpdateSchema>;
export type EngagementUpdate = z.input<typeof engagementUpdateSchema>;

/** Optional measurement time; defaults to now. An older value never replaces a newer one. */
const atInput = { at: z.iso.datetime({ offset: true }).optional() };

/** `dashboard.publish` input: `{ workspaceId, kind, …fields of that kind, at? }`. */
export const dashboardPublishInput = z.discriminatedUnion('kind', [
  metricUpdateSchema.extend({ workspaceId: idSchema, ...atInput }),
  postUpdateSchema.extend({ workspaceId: idSchema, ...atInput }),
  analyticsUpdateSchema.extend({ workspaceId: idSchema, ...atInput }),
  followersUpdateSchema.extend({ workspaceId: idSchema, ...atInput }),
  engagementUpdateSchema.extend({ workspaceId: idSchema, ...atInput }),
]);
export type DashboardPublishInput = z.input<typeof dashboardPublishInput>;
/** A publish input of any kind (an app's registry's included), validated by the registry's union. */
export type AnyDashboardPublishInput = { workspaceId: string; kind: string; at?: string } & Record<
  string,
  unknown
>;

/**
 * Filter of `dashboard.snapshot` and `dashboard.onUpdate` whose `kinds` name the given kinds
 * (Pulse's five, or a registry's: `dashboardKinds`).
 */
export function dashboardFilterInputFor<const T extends readonly [string, ...string[]]>(kinds: T) {
  return z.object({
    workspaceId: idSchema,
    kinds: z.array(z.enum(kinds)).max(kinds.length).optional(),
    platforms: z.array(dashboardPlatformSchema).max(20).optional(),
    /**
     * `onUpdate` only: the `until` of a `dashboard.history` read. Every stored update measured at or
     * after it follows the snapshot (in time order) before live updates, so history and live meet
     * without a gap; merge points by (key, at).
     */
    since: z.iso.datetime({ offset: true }).optional(),
  });
}

/** Filter of `dashboard.snapshot` and `dashboard.onUpdate`. */
export const dashboardFilterInput = dashboardFilterInputFor(seedDashboardKinds);
export type DashboardFilter = z.infer<typeof dashboardFilterInput>;
/** A filter over any kinds (an app's registry's included): what the service reads. */
export type AnyDashboardFilter = Omit<DashboardFilter, 'kinds'> & { kinds?: readonly string[] };

const eventBase = {
  type: z.literal('update'),
  workspaceId: z.string(),
  /** ISO time of the measurement. */
  at: z.string(),
  /** The value key (`kind:platform:accountId:subkey`): the snapshot keeps the latest value per key. */
  key: z.string(),
};

/** One live dashboard update as subscribers receive it. */
export const dashboardUpdateEventSchema = z.discriminatedUnion('kind', [
  metricUpdateSchema.extend(eventBase),
  postUpdateSchema.extend(eventBase),
  analyticsUpdateSchema.extend(eventBase),
  followersUpdateSchema.extend(eventBase),
  engagementUpdateSchema.extend(eventBase),
]);
export type DashboardUpdateEvent = z.output<typeof dashboardUpdateEventSchema>;

/** The latest value per key, first on every (re)subscribe and from `dashboard.snapshot`. */
export const dashboardSnapshotSchema = z.object({
  type: z.literal('snapshot'),
  workspaceId: z.string(),
  at: z.string(),
  updates: z.array(dashboardUpdateEventSchema),
});
export type DashboardSnapshot = z.output<typeof dashboardSnapshotSchema>;

/** What `dashboard.onUpdate` yields: a snapshot, then updates. */
export type DashboardEvent = DashboardSnapshot | DashboardUpdateEvent;

/** Result of `dashboard.publish`: `applied` is false when a newer value for the key was already stored. */
export const dashboardPublishResultSchema = z.object({
  applied: z.boolean(),
  event: dashboardUpdateEventSchema,
});
export type DashboardPublishResult = z.output<typeof dashboardPublishResultSchema>;

/** Bucket widths of `dashboard.history` (`raw` = every stored point). */
export const dashboardBucketSchema = z.enum(['raw', '1m', '1h']);
export type DashboardBucket = z.infer<typeof dashboardBucketSchema>;
/** Bucket widths in ms. */
export const dashboardBucketWidthMs = { '1m': 60_000, '1h': 3_600_000 } as const;

/** `dashboard.history` input whose `kind` is one of the given kinds (Pulse's five, or a registry's). */
export function dashboardHistoryInputFor<K extends z.ZodType<string>>(kind: K) {
  return z
    .object({
      workspaceId: idSchema,
      kind,
      platform: dashboardPlatformSchema.optional(),
      accountId: idSchema.optional(),
      /** A series name: the metric (`impressions`), or a field (`count`, `likes`, `reach`…). */
      metric: z.string().min(1).max(64).optional(),
      from: z.iso.datetime({ offset: true }),
      to: z.iso.datetime({ offset: true }).optional(),
      bucket: dashboardBucketSchema.default('1m'),
    })
    .refine((input) => !input.to || Date.parse(input.from) <= Date.parse(input.to), {
      message: 'from must not be after to',
      path: ['from'],
    });
}

/** `dashboard.history` input. `to` defaults to now; at most 10,000 points per series come back. */
export const dashboardHistoryInput = dashboardHistoryInputFor(dashboardKindSchema);
export type DashboardHistoryInput = z.input<typeof dashboardHistoryInput>;
/** A history input over any kinds (an app's registry's included): what the service reads. */
export type AnyDashboardHistoryInput = Omit<DashboardHistoryInput, 'kind'> & { kind: string };

/** One point of a series: a raw value, or a bucket's aggregate (`value` = its last value). */
export interface DashboardPoint {
  /** ISO time: the measurement (raw) or the bucket's start. */
  at: string;
  value: number;
  min: number;
  max: number;
  /** Values in the bucket (1 for raw points). */
  count: number;
  sum: number;
}

export interface DashboardSeries {
  /** The value key (as on live updates) and the series within it. */
  key: string;
  series: string;
  kind: string;
  platform: string;
  accountId: string;
  points: DashboardPoint[];
}

export interface DashboardHistory {
  workspaceId: string;
  bucket: DashboardBucket;
  series: DashboardSeries[];
  /**
   * The seam: ISO time of the newest stored measurement this read included (or `from` when none).
   * Subscribe with `onUpdate({ since: until })`: it sends every stored update with `at >= until`,
   * then live ones. Points are identified by (key, at): merge a repeated one by replacing it.
   */
  until: string;
}

/** The key a value is kept under: latest value per kind/platform/account/metric. */
export function dashboardValueKey(update: DashboardUpdateValue): string {
  const base = `${update.kind}:${update.platform}:${update.accountId}`;
  switch (update.kind) {
    case 'metric':
      return `${base}:${update.metric}`;
    case 'post':
      return `${base}:${update.postId}`;
    case 'analytics':
      return `${base}:${update.period}`;
    case 'followers':
      return base;
    case 'engagement':
      return `${base}:${update.postId ?? '*'}`;
    default: {
      // An app's own kind (`dashboardKinds`): one latest value per kind, platform and account.
      const other = update as { kind: string; platform?: string; accountId?: string };
      return `${other.kind}:${other.platform ?? '*'}:${other.accountId ?? '*'}`;
    }
  }
}
