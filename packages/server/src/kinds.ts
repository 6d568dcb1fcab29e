// NOTE: TrackedData is what a tracked subscription yields on the client; the root entry does not
// export it. Type-only, erased from the JS.
import type { TrackedData } from '@trpc/server/unstable-core-do-not-import';
import type {
  AnyTRPCRouter,
  TRPCMutationProcedure,
  TRPCQueryProcedure,
  TRPCRouterRecord,
  TRPCSubscriptionProcedure,
} from '@trpc/server';
import { z } from 'zod';
import { idSchema } from './auth/auth.schema.js';
import type { dashboardRouter } from './dashboard/dashboard.router.js';
import {
  analyticsUpdateSchema,
  type DashboardHistory,
  type DashboardKind,
  type DashboardUpdate,
  type DashboardUpdateValue,
  type dashboardFilterInput,
  dashboardFilterInputFor,
  type dashboardHistoryInput,
  dashboardHistoryInputFor,
  type dashboardPublishInput,
  engagementUpdateSchema,
  followersUpdateSchema,
  metricUpdateSchema,
  postUpdateSchema,
  seedDashboardKinds,
} from './dashboard/dashboard.schema.js';
import { notificationsRouter } from './notifications/notifications.router.js';
import {
  type NotificationEvent,
  type NotificationPage,
  type NotificationFeedEvent,
  type notificationBulkInput,
  notificationBulkInputFor,
  type notificationPreferencesSetInput,
  notificationPreferencesSetInputFor,
  notificationContentFields,
  type notificationContentSchema,
  type notificationPreferencesSchemasFor,
  notificationListInput,
  notificationPayloads,
  type notificationStoredFields,
  type notificationSubscribeInput,
} from './notifications/notifications.schema.js';
import { adminProcedure, memberProcedure } from './trpc.js';

/** The app's notification kinds: kind name → zod schema of its `data`. */
export type NotificationKindSchemas = Record<string, z.ZodObject>;

/** The eight seed kinds (mention, message, approval, alert, post_published, post_failed, crisis, review). */
export type SeedNotificationKinds = typeof notificationPayloads;

/** The kinds a router serves: the seed kinds plus (or, with `replaceDefaults`, instead of) the app's. */
export type MergedNotificationKinds<E extends NotificationKindSchemas, R extends boolean> = R extends true
  ? E
  : Omit<SeedNotificationKinds, keyof E> & E;

type Simplify<T> = { [P in keyof T]: T[P] } & {};
type Names<K> = keyof K & string;
type DataIn<S> = S extends z.ZodType ? z.input<S> : never;
type DataOut<S> = S extends z.ZodType ? z.output<S> : never;
type ContentIn = z.input<z.ZodObject<typeof notificationContentFields>>;
type ContentOut = z.output<z.ZodObject<typeof notificationContentFields>>;
type StoredFields = z.output<z.ZodObject<typeof notificationStoredFields>>;

/** What a sender of one of the kinds `K` passes to `notifications.send` (without `workspaceId`). */
export type KindContentInput<K> = {
  [T in Names<K>]: Simplify<{ type: T } & ContentIn & { data: DataIn<K[T]> }>;
}[Names<K>];
/** The same, parsed (defaults applied). */
export type KindContent<K> = {
  [T in Names<K>]: Simplify<{ type: T } & ContentOut & { data: DataOut<K[T]> }>;
}[Names<K>];
/** A stored notification of one of the kinds `K`. */
export type KindStoredNotification<K> = {
  [T in Names<K>]: Simplify<{ type: T } & StoredFields & { data: DataOut<K[T]> }>;
}[Names<K>];
/** A notification of one of the kinds `K` as one recipient sees it. */
export type KindNotification<K> = KindStoredNotification<K> & {
  readAt: string | null;
  seenAt?: string | null;
  archivedAt?: string | null;
};

type WithKinds<E, K> = E extends { type: 'notification' }
  ? Simplify<Omit<E, 'notification'> & { notification: KindNotification<K> }>
  : E extends { type: 'preferences' }
    ? Simplify<
        Omit<E, 'user' | 'workspace'> & {
          user?: KindUserPreferences<K> | undefined;
          workspace?: KindWorkspacePreferences<K> | undefined;
        }
      >
    : E;
/** What `notifications.onNotification` yields with the kinds `K`. */
export type KindNotificationEvent<K> = WithKinds<NotificationEvent, K>;
/** What `notifications.onFeed` yields with the kinds `K`. */
export type KindNotificationFeedEvent<K> = WithKinds<NotificationFeedEvent, K>;
/** `notifications.list` with the kinds `K`. */
export type KindNotificationPage<K> = Simplify<
  Omit<NotificationPage, 'items'> & { items: Array<KindNotification<K>> }
>;
/** `notifications.send` with the kinds `K`. */
export interface KindSendResult<K> {
  notification: KindStoredNotification<K>;
  created: boolean;
}

/** A kind-name enum of the kinds `K` (the type `notificationKinds` builds its schemas from). */
type KindEnum<K> = z.ZodEnum<{ [T in Names<K>]: T }>;
type KindPreferencesSchemas<K> = ReturnType<typeof notificationPreferencesSchemasFor<KindEnum<K>>>;
/** A user's own preferences whose `kinds` name the kinds `K`. */
export type KindUserPreferences<K> = z.output<KindPreferencesSchemas<K>['user']>;
/** A workspace's defaults whose `kinds` name the kinds `K`. */
export type KindWorkspacePreferences<K> = z.output<KindPreferencesSchemas<K>['workspace']>;
/** `notifications.preferences.get` with the kinds `K`: `effective` has one entry per kind. */
export type KindNotificationPreferences<K> = z.output<KindPreferencesSchemas<K>['preferences']>;
/** `notifications.preferences.set`'s input whose `kinds` name the kinds `K`. */
export type KindNotificationPreferencesSetInput<K> = z.input<
  ReturnType<typeof notificationPreferencesSetInputFor<KindEnum<K>>>
>;

/** A registry of notification kinds made by `notificationKinds`: the schemas a router validates with. */
export interface NotificationKinds<K> {
  /** Kind name → `data` schema. */
  readonly payloads: K;
  /** Every kind name. */
  readonly types: readonly Names<K>[];
  /** The discriminated union on `type` that `notifications.send` validates (bad payload: BAD_REQUEST). */
  readonly content: z.ZodType<KindContent<K>, KindContentInput<K>>;
  /** `notifications.list` input whose `types` / `kinds` name these kinds. */
  readonly listInput: typeof notificationListInput;
  /** `markSeen` / `markRead` / `archive` / `unarchive` input whose `types` / `kinds` name these kinds. */
  readonly bulkInput: typeof notificationBulkInput;
  /** `preferences.set` input whose per-kind `kinds` name these kinds. */
  readonly preferencesInput: typeof notificationPreferencesSetInput;
}

const kindNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase letter then up to 63 lowercase letters, digits or _');

/** Options of `notificationKinds` / `createPulseRouter`. */
export interface NotificationKindOptions<R extends boolean> {
  /** `true`: the app's kinds replace the eight seed kinds instead of joining them. */
  replaceDefaults?: R;
}

/**
 * Builds a registry of notification kinds: the eight seed kinds plus the app's (a kind with a
 * seed kind's name replaces it), or only the app's with `replaceDefaults: true`.
 *
 * @example
 * const kinds = notificationKinds({ invoice_paid: z.object({ invoiceId: z.string(), amount: z.number() }) });
 */
export function notificationKinds<
  const E extends NotificationKindSchemas = Record<never, never>,
  const R extends boolean = false,
>(extra?: E, options: NotificationKindOptions<R> = {}): NotificationKinds<MergedNotificationKinds<E, R>> {
  const payloads: Record<string, z.ZodObject> = options.replaceDefaults
    ? {}
    : { ...(notificationPayloads as unknown as Record<string, z.ZodObject>) };
  for (const [name, schema] of Object.entries(extra ?? {})) {
    const parsed = kindNameSchema.safeParse(name);
    if (!parsed.success) throw new Error(`Notification kind "${name}" ${parsed.error.issues[0]?.message}`);
    if (!(schema instanceof z.ZodObject))
      throw new Error(`Notification kind "${name}": data must be a z.object`);
    payloads[name] = schema;
  }
  const types = Object.keys(payloads);
  if (types.length === 0) throw new Error('notificationKinds: no kinds (replaceDefaults needs at least one)');
  const variants = types.map((type) =>
    z.object({ type: z.literal(type), ...notificationContentFields, data: payloads[type] as z.ZodObject }),
  );
  const content = z.discriminatedUnion('type', variants as [(typeof variants)[number]]);
  const typeSchema = z.enum(types as [string, ...string[]]);
  const typeList = z.array(typeSchema).min(1).max(types.length).optional();
  // NOTE: only the kind filter changes; every other field (cursor, limit, status) is the seed input's.
  const listInput = notificationListInput.extend({ types: typeList, kinds: typeList });
  const bulkInput = notificationBulkInputFor(typeSchema, types.length);
  return Object.freeze({
    payloads,
    types,
    content,
    listInput,
    bulkInput,
    preferencesInput: notificationPreferencesSetInputFor(typeSchema),
  }) as unknown as NotificationKinds<MergedNotificationKinds<E, R>>;
}

type SeedRouter = typeof notificationsRouter;
type Meta<P extends { meta: unknown }> = P['meta'];
type ListInput = z.input<typeof notificationListInput>;
type BulkInput = z.input<typeof notificationBulkInput>;
type KindBulkProcedure<
  K,
  P extends { _def: { $types: { output: unknown } }; meta: unknown },
> = TRPCMutationProcedure<{
  input: Simplify<Omit<BulkInput, 'types' | 'kinds'> & { types?: Names<K>[]; kinds?: Names<K>[] }>;
  output: P['_def']['$types']['output'];
  meta: Meta<P>;
}>;

/** The `notifications` router record typed with the kinds `K` (every other procedure as Pulse's). */
export type KindNotificationsRouter<K> = Omit<
  SeedRouter,
  | 'send'
  | 'list'
  | 'onFeed'
  | 'onNotification'
  | 'markSeen'
  | 'markRead'
  | 'archive'
  | 'unarchive'
  | 'preferences'
> & {
  preferences: {
    get: TRPCQueryProcedure<{
      input: SeedRouter['preferences']['get']['_def']['$types']['input'];
      output: KindNotificationPreferences<K>;
      meta: Meta<SeedRouter['preferences']['get']>;
    }>;
    set: TRPCMutationProcedure<{
      input: KindNotificationPreferencesSetInput<K>;
      output: KindNotificationPreferences<K>;
      meta: Meta<SeedRouter['preferences']['set']>;
    }>;
  };
  markSeen: KindBulkProcedure<K, SeedRouter['markSeen']>;
  markRead: KindBulkProcedure<K, SeedRouter['markRead']>;
  archive: KindBulkProcedure<K, SeedRouter['archive']>;
  unarchive: KindBulkProcedure<K, SeedRouter['unarchive']>;
  send: TRPCMutationProcedure<{
    input: { workspaceId: string } & KindContentInput<K>;
    output: KindSendResult<K>;
    meta: Meta<SeedRouter['send']>;
  }>;
  list: TRPCQueryProcedure<{
    input: Simplify<Omit<ListInput, 'types' | 'kinds'> & { types?: Names<K>[]; kinds?: Names<K>[] }>;
    output: KindNotificationPage<K>;
    meta: Meta<SeedRouter['list']>;
  }>;
  onFeed: TRPCSubscriptionProcedure<{
    input: z.input<typeof notificationSubscribeInput>;
    output: AsyncIterable<TrackedData<KindNotificationFeedEvent<K>>>;
    meta: Meta<SeedRouter['onFeed']>;
  }>;
  onNotification: TRPCSubscriptionProcedure<{
    input: z.input<typeof notificationSubscribeInput>;
    output: AsyncIterable<TrackedData<KindNotificationEvent<K>>>;
    meta: Meta<SeedRouter['onNotification']>;
  }>;
};

/**
 * The `notifications` router for a registry of kinds: every procedure of Pulse's, with `send`
 * validating against the registry's union, `list` filtering by its kinds, and send / list /
 * onNotification / onFeed typed with them. Same paths, auth and rate limits as the default.
 */
export function notificationsRouterWith<K>(kinds: NotificationKinds<K>): KindNotificationsRouter<K> {
  // NOTE: the service is shared by every router; the schemas travel with each call instead of
  // living in the service, so the default router and an app's router can be served side by side.
  // The procedures are built with the seed types and re-typed once below (tRPC's input chaining
  // cannot check a schema whose type is still generic).
  const content = kinds.content as unknown as typeof notificationContentSchema;
  const listInput = kinds.listInput;
  const bulkInput = kinds.bulkInput;
  const registry = {
    types: kinds.types,
    preferencesInput: kinds.preferencesInput as unknown as typeof notificationPreferencesSetInput,
  };
  const record = {
    ...notificationsRouter,
    /** Sends a notification of one of the router's kinds (admin or service); bad data: BAD_REQUEST. */
    send: adminProcedure
      .input(content)
      .mutation(({ ctx, input }) =>
        ctx.services.notifications.sendValidated(ctx.principal, input.workspaceId, input),
      ),
    /** The caller's notifications, newest first; `types` / `kinds` name the router's kinds. */
    list: memberProcedure
      .input(listInput)
      .query(({ ctx, input }) => ctx.services.notifications.list(ctx.principal.userId, input, listInput)),
    preferences: {
      /** The caller's preferences; `effective` lists every kind of the router. */
      get: memberProcedure
        .input(z.object({ workspaceId: idSchema }))
        .query(({ ctx, input }) =>
          ctx.services.notifications.preferences(ctx.principal.userId, input.workspaceId, registry.types),
        ),
      /** Changes the caller's (or the workspace's) preferences; `kinds` names the router's kinds. */
      set: memberProcedure
        .input(registry.preferencesInput)
        .mutation(({ ctx, input }) =>
          ctx.services.notifications.setPreferences(ctx.principal, input, registry),
        ),
    },
    /** Marks seen: by `ids`, or `all: true` (optionally of some of the router's kinds, `upTo`). */
    markSeen: memberProcedure
      .input(bulkInput)
      .mutation(({ ctx, input }) =>
        ctx.services.notifications.changeState(ctx.principal.userId, 'seen', input, bulkInput),
      ),
    /** Marks read (also seen); `types` / `kinds` name the router's kinds. */
    markRead: memberProcedure.input(bulkInput).mutation(async ({ ctx, input }) => {
      const result = await ctx.services.notifications.changeState(
        ctx.principal.userId,
        'read',
        input,
        bulkInput,
      );
      return { ...result, unreadCount: result.counts.unread };
    }),
    /** Archives; `types` / `kinds` name the router's kinds. */
    archive: memberProcedure
      .input(bulkInput)
      .mutation(({ ctx, input }) =>
        ctx.services.notifications.changeState(ctx.principal.userId, 'archived', input, bulkInput),
      ),
    /** Brings archived notifications back; `types` / `kinds` name the router's kinds. */
    unarchive: memberProcedure
      .input(bulkInput)
      .mutation(({ ctx, input }) =>
        ctx.services.notifications.changeState(ctx.principal.userId, 'unarchived', input, bulkInput),
      ),
  } satisfies TRPCRouterRecord;
  registryOfProcedure.set(record.send, kinds as NotificationKinds<unknown>);
  // NOTE: onFeed / onNotification are Pulse's own procedures (the stream stores and replays any
  // kind as JSON); only their types change.
  return record as unknown as KindNotificationsRouter<K>;
}

// NOTE: compile-time check that the re-typed router with the seed kinds is Pulse's own router, so
// the typing above cannot drift from what tRPC infers for the default procedures.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type SeedIO<P> = P extends { _def: { $types: infer T } } ? T : never;
type DefaultKinds = KindNotificationsRouter<SeedNotificationKinds>;
type _KindsRouterMatchesSeed = [
  Same<SeedIO<DefaultKinds['onNotification']>['output'], SeedIO<SeedRouter['onNotification']>['output']>,
  Same<SeedIO<DefaultKinds['onFeed']>['output'], SeedIO<SeedRouter['onFeed']>['output']>,
  Same<SeedIO<DefaultKinds['preferences']['get']>, SeedIO<SeedRouter['preferences']['get']>>,
  Same<SeedIO<DefaultKinds['preferences']['set']>, SeedIO<SeedRouter['preferences']['set']>>,
] extends [true, true, true, true]
  ? true
  : never;
const _kindsRouterMatchesSeed: _KindsRouterMatchesSeed = true;
void _kindsRouterMatchesSeed;

const seedDashboardVariants: z.ZodObject[] = [
  metricUpdateSchema,
  postUpdateSchema,
  analyticsUpdateSchema,
  followersUpdateSchema,
  engagementUpdateSchema,
];

/** The app's dashboard kinds: kind name → zod schema of its fields (without `kind`). */
export type DashboardKindSchemas = Record<string, z.ZodObject>;

/** One dashboard kind's fields (without `kind`): what a publisher passes and what subscribers get. */
interface DashboardShape {
  in: object;
  out: object;
}
type SeedShape<N extends DashboardKind> = {
  in: Omit<Extract<DashboardUpdate, { kind: N }>, 'kind'>;
  out: Omit<Extract<DashboardUpdateValue, { kind: N }>, 'kind'>;
};
/** Pulse's five dashboard kinds (metric, post, analytics, followers, engagement). */
export type SeedDashboardKinds = { [N in DashboardKind]: SeedShape<N> };
type AppDashboardShapes<E extends DashboardKindSchemas> = {
  [N in keyof E]: { in: z.input<E[N]>; out: z.output<E[N]> };
};
/** The dashboard kinds a router serves: Pulse's five plus (or, with `replaceDefaults`, instead of) the app's. */
export type MergedDashboardKinds<E extends DashboardKindSchemas, R extends boolean> = R extends true
  ? AppDashboardShapes<E>
  : SeedDashboardKinds & AppDashboardShapes<E>;

type ShapeIn<S> = S extends DashboardShape ? S['in'] : never;
type ShapeOut<S> = S extends DashboardShape ? S['out'] : never;
/** What `dashboard.publish` takes with the kinds `K`. */
export type DashboardKindPublishInput<K> = {
  [N in Names<K>]: Simplify<{ workspaceId: string; kind: N } & ShapeIn<K[N]> & { at?: string }>;
}[Names<K>];
/** One live update of one of the kinds `K` as subscribers receive it. */
export type DashboardKindUpdateEvent<K> = {
  [N in Names<K>]: Simplify<
    { kind: N } & ShapeOut<K[N]> & { type: 'update'; workspaceId: string; at: string; key: string }
  >;
}[Names<K>];
/** The latest value per key with the kinds `K`. */
export interface DashboardKindSnapshot<K> {
  type: 'snapshot';
  workspaceId: string;
  at: string;
  updates: Array<DashboardKindUpdateEvent<K>>;
}
/** What `dashboard.onUpdate` yields with the kinds `K`. */
export type DashboardKindEvent<K> = DashboardKindSnapshot<K> | DashboardKindUpdateEvent<K>;
/** `dashboard.publish`'s result with the kinds `K`. */
export interface DashboardKindPublishResult<K> {
  applied: boolean;
  event: DashboardKindUpdateEvent<K>;
}

/** A registry of dashboard kinds made by `dashboardKinds`: the schemas a router validates with. */
export interface DashboardKinds<K> {
  /** Every kind name. */
  readonly types: readonly Names<K>[];
  /** The discriminated union on `kind` that `dashboard.publish` validates (bad payload: BAD_REQUEST with the path). */
  readonly publishInput: z.ZodType<unknown, DashboardKindPublishInput<K>>;
  /** `dashboard.snapshot` / `dashboard.onUpdate` input whose `kinds` name these kinds. */
  readonly filterInput: ReturnType<typeof dashboardFilterInputFor<[string, ...string[]]>>;
  /** `dashboard.history` input whose `kind` is one of these kinds. */
  readonly historyInput: ReturnType<typeof dashboardHistoryInputFor<z.ZodEnum<Record<string, string>>>>;
}

/** Options of `dashboardKinds`. */
export interface DashboardKindOptions<R extends boolean> {
  /** `true`: the app's kinds replace Pulse's five instead of joining them. */
  replaceDefaults?: R;
}

/**
 * Builds the registry of dashboard kinds: Pulse's five plus the app's (e.g. a `mrr` live value),
 * or only the app's with `replaceDefaults: true`. `createPulseRouters({ dashboardKinds })` serves
 * it; a bad payload fails with BAD_REQUEST and the zod path. An app kind keeps one latest value
 * per kind, `platform` and `accountId` (when it has them), and every top-level number field is a
 * history series named after the field.
 *
 * @example
 * const kinds = dashboardKinds({ mrr: z.object({ value: z.number(), currency: z.enum(['EUR', 'USD']) }) });
 */
export function dashboardKinds<
  const E extends DashboardKindSchemas = Record<never, never>,
  const R extends boolean = false,
>(extra?: E, options: DashboardKindOptions<R> = {}): DashboardKinds<MergedDashboardKinds<E, R>> {
  const variants: z.ZodObject[] = options.replaceDefaults ? [] : [...seedDashboardVariants];
  for (const [name, schema] of Object.entries(extra ?? {})) {
    const parsed = kindNameSchema.safeParse(name);
    if (!parsed.success) throw new Error(`Dashboard kind "${name}" ${parsed.error.issues[0]?.message}`);
    // NOTE: value keys and history series of Pulse's kinds are built from their own fields, so an
    // app kind cannot take one of their names (even with replaceDefaults).
    if ((seedDashboardKinds as readonly string[]).includes(name))
      throw new Error(`Dashboard kind "${name}" is one of Pulse's own kinds: pick another name`);
    if (!(schema instanceof z.ZodObject))
      throw new Error(`Dashboard kind "${name}": fields must be a z.object`);
    for (const reserved of ['kind', 'type', 'workspaceId', 'at', 'key'])
      if (reserved in schema.shape)
        throw new Error(`Dashboard kind "${name}": "${reserved}" is set by Pulse, not a field of the kind`);
    variants.push(schema.extend({ kind: z.literal(name) }));
  }
  if (variants.length === 0) throw new Error('dashboardKinds: no kinds (replaceDefaults needs at least one)');
  const withAddress = variants.map((v) =>
    v.extend({ workspaceId: idSchema, at: z.iso.datetime({ offset: true }).optional() }),
  );
  const publishInput = z.discriminatedUnion('kind', withAddress as [(typeof withAddress)[number]]);
  const types = variants.map((v) => (v.shape.kind as z.ZodLiteral<string>).value) as [string, ...string[]];
  return Object.freeze({
    types,
    publishInput,
    filterInput: dashboardFilterInputFor(types),
    historyInput: dashboardHistoryInputFor(z.enum(types)),
  }) as unknown as DashboardKinds<MergedDashboardKinds<E, R>>;
}

type SeedDashboardRouter = typeof dashboardRouter;
type FilterIn = z.input<typeof dashboardFilterInput>;
type HistoryIn = z.input<typeof dashboardHistoryInput>;

/** The `dashboard` router record typed with the kinds `K`. */
export type KindDashboardRouter<K> = {
  publish: TRPCMutationProcedure<{
    input: DashboardKindPublishInput<K>;
    output: DashboardKindPublishResult<K>;
    meta: Meta<SeedDashboardRouter['publish']>;
  }>;
  snapshot: TRPCQueryProcedure<{
    input: Simplify<Omit<FilterIn, 'kinds'> & { kinds?: Names<K>[] }>;
    output: DashboardKindSnapshot<K>;
    meta: Meta<SeedDashboardRouter['snapshot']>;
  }>;
  history: TRPCQueryProcedure<{
    input: Simplify<Omit<HistoryIn, 'kind'> & { kind: Names<K> }>;
    output: DashboardHistory;
    meta: Meta<SeedDashboardRouter['history']>;
  }>;
  onUpdate: TRPCSubscriptionProcedure<{
    input: Simplify<Omit<FilterIn, 'kinds'> & { kinds?: Names<K>[] }>;
    output: AsyncIterable<DashboardKindEvent<K>>;
    meta: Meta<SeedDashboardRouter['onUpdate']>;
  }>;
};

/** The registry a router's procedure validates with (`server.publish`, REST and publishers read it). */
const registryOfProcedure = new WeakMap<object, NotificationKinds<unknown> | DashboardKinds<unknown>>();

/**
 * The `dashboard` router for a registry of kinds: publish validates against the registry's union,
 * snapshot / onUpdate filter by its kinds, history reads any of them. Same paths and auth as
 * Pulse's own.
 */
export function dashboardRouterWith<K>(kinds: DashboardKinds<K>): KindDashboardRouter<K> {
  const { publishInput, filterInput, historyInput } = kinds;
  const record = {
    /** Publishes one value of one of the router's kinds (admin or service); bad fields: BAD_REQUEST. */
    publish: adminProcedure
      .input(publishInput as unknown as typeof dashboardPublishInput)
      .mutation(({ ctx, input }) => ctx.services.dashboard.publish(input, publishInput)),
    /** The latest value per key, of the router's kinds. */
    snapshot: memberProcedure
      .input(filterInput)
      .query(({ ctx, input }) => ctx.services.dashboard.snapshot(input)),
    /** Raw points or buckets of one of the router's kinds over a window. */
    history: memberProcedure
      .input(historyInput)
      .query(({ ctx, input }) => ctx.services.dashboard.readHistory(input, historyInput)),
    /** A snapshot, then live updates of the router's kinds. */
    onUpdate: memberProcedure
      .input(filterInput)
      .subscription(({ ctx, input, signal }) => ctx.services.dashboard.onUpdate(input, signal)),
  } satisfies TRPCRouterRecord;
  registryOfProcedure.set(record.publish, kinds as DashboardKinds<unknown>);
  return record as unknown as KindDashboardRouter<K>;
}

/** The app's registries a router validates with: what `server.publish`, REST and publishers check against. */
export interface RouterKinds {
  notifications: NotificationKinds<unknown> | null;
  dashboard: DashboardKinds<unknown> | null;
}

/** The registries of a router built by `createPulseRouters` (null: Pulse's own kinds). */
export function kindsOfRouter(router: AnyTRPCRouter): RouterKinds {
  const procedures = router._def.procedures as Record<string, object | undefined>;
  const notifications = procedures['notifications.send'];
  const dashboard = procedures['dashboard.publish'];
  return {
    notifications: ((notifications && registryOfProcedure.get(notifications)) ??
      null) as NotificationKinds<unknown> | null,
    dashboard: ((dashboard && registryOfProcedure.get(dashboard)) ?? null) as DashboardKinds<unknown> | null,
  };
}

// NOTE: compile-time check that the typed dashboard router with the seed kinds is Pulse's own.
type SeedDashboard = KindDashboardRouter<SeedDashboardKinds>;
type _DashboardMatchesSeed = [
  Same<SeedIO<SeedDashboard['onUpdate']>['output'], SeedIO<SeedDashboardRouter['onUpdate']>['output']>,
  Same<SeedIO<SeedDashboard['publish']>['input'], SeedIO<SeedDashboardRouter['publish']>['input']>,
] extends [true, true]
  ? true
  : never;
const _dashboardMatchesSeed: _DashboardMatchesSeed = true;
void _dashboardMatchesSeed;
