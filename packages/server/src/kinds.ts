// NOTE: TrackedData is what a tracked subscription yields on the client; the root entry does not
// export it. Type-only, erased from the JS.
import type { TrackedData } from '@trpc/server/unstable-core-do-not-import';
import type {
  TRPCMutationProcedure,
  TRPCQueryProcedure,
  TRPCRouterRecord,
  TRPCSubscriptionProcedure,
} from '@trpc/server';
import { z } from 'zod';
import { idSchema } from './auth/auth.schema.js';
import {
  analyticsUpdateSchema,
  engagementUpdateSchema,
  followersUpdateSchema,
  metricUpdateSchema,
  postUpdateSchema,
} from './dashboard/dashboard.schema.js';
import { notificationsRouter } from './notifications/notifications.router.js';
import {
  type NotificationEvent,
  type NotificationFeedEvent,
  notificationContentFields,
  type notificationContentSchema,
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
  : E;
/** What `notifications.onNotification` yields with the kinds `K`. */
export type KindNotificationEvent<K> = WithKinds<NotificationEvent, K>;
/** What `notifications.onFeed` yields with the kinds `K`. */
export type KindNotificationFeedEvent<K> = WithKinds<NotificationFeedEvent, K>;
/** `notifications.list` with the kinds `K`. */
export interface KindNotificationPage<K> {
  items: Array<KindNotification<K>>;
  nextCursor: string | null;
}
/** `notifications.send` with the kinds `K`. */
export interface KindSendResult<K> {
  notification: KindStoredNotification<K>;
  created: boolean;
}

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
  return Object.freeze({
    payloads,
    types,
    content,
    listInput,
  }) as unknown as NotificationKinds<MergedNotificationKinds<E, R>>;
}

type SeedRouter = typeof notificationsRouter;
type Meta<P extends { meta: unknown }> = P['meta'];
type ListInput = z.input<typeof notificationListInput>;

/** The `notifications` router record typed with the kinds `K` (every other procedure as Pulse's). */
export type KindNotificationsRouter<K> = Omit<SeedRouter, 'send' | 'list' | 'onFeed' | 'onNotification'> & {
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
  const record = {
    ...notificationsRouter,
    /** Sends a notification of one of the router's kinds (admin or service); bad data: BAD_REQUEST. */
    send: adminProcedure
      .input(content)
      .mutation(({ ctx, input }) => ctx.services.notifications.send(ctx.principal, input, content)),
    /** The caller's notifications, newest first; `types` / `kinds` name the router's kinds. */
    list: memberProcedure
      .input(listInput)
      .query(({ ctx, input }) => ctx.services.notifications.list(ctx.principal.userId, input, listInput)),
  } satisfies TRPCRouterRecord;
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
] extends [true, true]
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

/**
 * Builds the publish union of the dashboard: the five seed kinds plus the app's (e.g. a `mrr`
 * live value), or only the app's with `replaceDefaults: true`. Pass `publishInput` to
 * `DashboardService.publish(input, publishInput)`; a bad payload fails with the zod path.
 * An app kind keeps one latest value per kind, `platform` and `accountId` (when it has them).
 * NOTE: not wired into `createPulseRouters` yet (see docs/extend.md).
 */
export function dashboardKinds(
  extra: DashboardKindSchemas = {},
  options: { replaceDefaults?: boolean } = {},
) {
  const variants: z.ZodObject[] = options.replaceDefaults ? [] : [...seedDashboardVariants];
  for (const [name, schema] of Object.entries(extra)) {
    const parsed = kindNameSchema.safeParse(name);
    if (!parsed.success) throw new Error(`Dashboard kind "${name}" ${parsed.error.issues[0]?.message}`);
    if (!(schema instanceof z.ZodObject))
      throw new Error(`Dashboard kind "${name}": fields must be a z.object`);
    variants.push(schema.extend({ kind: z.literal(name) }));
  }
  if (variants.length === 0) throw new Error('dashboardKinds: no kinds (replaceDefaults needs at least one)');
  const withAddress = variants.map((v) =>
    v.extend({ workspaceId: idSchema, at: z.iso.datetime({ offset: true }).optional() }),
  );
  const publishInput = z.discriminatedUnion('kind', withAddress as [(typeof withAddress)[number]]);
  return Object.freeze({
    types: variants.map((v) => (v.shape.kind as z.ZodLiteral<string>).value),
    publishInput,
  });
}
