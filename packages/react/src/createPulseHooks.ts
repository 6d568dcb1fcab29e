import type { AnyTRPCRouter, inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { type TypedUseChannel, useChannelUntyped } from './useChannel.js';
import {
  type UseDashboardHistoryOptions,
  type UseDashboardHistoryResult,
  type UseDashboardOptions,
  type UseDashboardResult,
  useDashboard,
  useDashboardHistory,
} from './useDashboard.js';
import {
  type UseNotificationPreferencesOptions,
  type UseNotificationPreferencesResult,
  useNotificationPreferences,
} from './useNotificationPreferences.js';
import {
  type UseNotificationsOptions,
  type UseNotificationsResult,
  useNotifications,
} from './useNotifications.js';

type Out<R extends AnyTRPCRouter> = inferRouterOutputs<R>;
type In<R extends AnyTRPCRouter> = inferRouterInputs<R>;
type Yielded<T> = T extends AsyncIterable<infer U> ? U : never;

/** One live dashboard update of the router's kinds (Pulse's five plus the app's `dashboardKinds`). */
export type DashboardUpdateOf<R extends AnyTRPCRouter> =
  Out<R> extends {
    dashboard: { onUpdate: infer U };
  }
    ? Exclude<Yielded<U>, { type: 'snapshot' }>
    : never;
/** The dashboard kind names of the router. */
export type DashboardKindOf<R extends AnyTRPCRouter> =
  In<R> extends { dashboard: { history: { kind: infer K } } } ? K : never;
/** One notification of the router's kinds, as `notifications.list` returns it. */
export type NotificationOf<R extends AnyTRPCRouter> =
  Out<R> extends {
    notifications: { list: { items: Array<infer N> } };
  }
    ? N
    : never;
/** The notification kind names of the router. */
export type NotificationKindOf<R extends AnyTRPCRouter> =
  In<R> extends {
    notifications: { list: { kinds?: Array<infer K> } };
  }
    ? K
    : never;

/** `notifications.preferences.get` of the router: `effective` and the `kinds` choices name its kinds. */
export type NotificationPreferencesOf<R extends AnyTRPCRouter> =
  Out<R> extends {
    notifications: { preferences: { get: infer P } };
  }
    ? P
    : never;
/** A change of preferences for the router: `notifications.preferences.set`'s input without the workspace. */
export type NotificationPreferencesChangeOf<R extends AnyTRPCRouter> =
  In<R> extends {
    notifications: { preferences: { set: infer C } };
  }
    ? Omit<C, 'workspaceId'>
    : never;

type Values<R extends AnyTRPCRouter> = Readonly<Record<string, DashboardUpdateOf<R>>>;

/** `useDashboard` typed with the app's router: its kinds in the filter, its updates in `values`. */
export type TypedUseDashboard<R extends AnyTRPCRouter> = <TSelected = Values<R>>(
  workspaceId: string,
  opts?: UseDashboardOptions<TSelected, DashboardUpdateOf<R>, DashboardKindOf<R>>,
) => UseDashboardResult<TSelected, DashboardUpdateOf<R>>;

/** `useDashboardHistory` typed with the app's router: `kind` is one of its kinds. */
export type TypedUseDashboardHistory<R extends AnyTRPCRouter> = (
  workspaceId: string,
  opts: UseDashboardHistoryOptions<DashboardKindOf<R>>,
) => UseDashboardHistoryResult;

/** `useNotifications` typed with the app's router: its kinds in filters and bulk actions, its notifications in `items`. */
export interface TypedUseNotifications<R extends AnyTRPCRouter> {
  <TSelected>(
    workspaceId: string,
    opts: UseNotificationsOptions<TSelected, NotificationOf<R>, NotificationKindOf<R>> & {
      select: (items: NotificationOf<R>[]) => TSelected;
    },
  ): UseNotificationsResult<TSelected, NotificationKindOf<R>>;
  (
    workspaceId: string,
    opts?: UseNotificationsOptions<NotificationOf<R>[], NotificationOf<R>, NotificationKindOf<R>>,
  ): UseNotificationsResult<NotificationOf<R>[], NotificationKindOf<R>>;
}

/** `useNotificationPreferences` typed with the app's router: its kinds in `effective`, the choices and `set`. */
export type TypedUseNotificationPreferences<R extends AnyTRPCRouter> = (
  workspaceId: string,
  opts?: UseNotificationPreferencesOptions,
) => UseNotificationPreferencesResult<NotificationPreferencesOf<R>, NotificationPreferencesChangeOf<R>>;

/** The hooks `createPulseHooks<AppRouter>()` returns. */
export interface PulseHooks<R extends AnyTRPCRouter> {
  useChannel: TypedUseChannel<R>;
  useDashboard: TypedUseDashboard<R>;
  useDashboardHistory: TypedUseDashboardHistory<R>;
  useNotifications: TypedUseNotifications<R>;
  useNotificationPreferences: TypedUseNotificationPreferences<R>;
}

/**
 * The hooks typed with the app's router (`createPulseRouters({ notificationKinds, dashboardKinds })`
 * plus its channels): `const { useDashboard, useNotifications, useNotificationPreferences, useChannel } =
 * createPulseHooks<AppRouter>()`.
 * They are Pulse's hooks on the client of the nearest `<PulseProvider>`; only the typing is built,
 * from the router's own procedures (no hand-written copy of the app's kinds).
 *
 * @example
 * ```tsx
 * const { useDashboard } = createPulseHooks<AppRouter>();
 * const { values } = useDashboard('acme', { kinds: ['mrr'] });
 * const mrr = Object.values(values).find((v) => v.kind === 'mrr');
 * return <Amount value={mrr?.kind === 'mrr' ? mrr.value : 0} />;
 * ```
 */
export function createPulseHooks<R extends AnyTRPCRouter>(): PulseHooks<R> {
  return {
    useChannel: useChannelUntyped as TypedUseChannel<R>,
    useDashboard: useDashboard as unknown as TypedUseDashboard<R>,
    useDashboardHistory: useDashboardHistory as unknown as TypedUseDashboardHistory<R>,
    useNotifications: useNotifications as unknown as TypedUseNotifications<R>,
    useNotificationPreferences: useNotificationPreferences as unknown as TypedUseNotificationPreferences<R>,
  };
}
