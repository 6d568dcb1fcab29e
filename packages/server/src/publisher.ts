import { type AnyTRPCRouter, type inferRouterInputs, type inferRouterOutputs, TRPCError } from '@trpc/server';
import type { z } from 'zod';
import type { AnyChannel, ChannelPublishResult } from './channels/channel.js';
import type { ChannelPublishInput } from './channels/channels.service.js';
import type {
  DashboardKind,
  DashboardPublishInput,
  DashboardPublishResult,
} from './dashboard/dashboard.schema.js';
import type {
  NotificationContentInput,
  NotificationPriority,
  NotificationType,
  notificationPayloads,
} from './notifications/notifications.schema.js';
import type { SendResult } from './notifications/notifications.service.js';
import type { RouterKinds } from './kinds.js';
import type { UserPresence } from './presence/presence.schema.js';
import type { AppRouter } from './router.js';
import type { PulseServices } from './services.js';

/** A notification's content without its addressing (`workspaceId`, `userId`). */
export type NotificationMessage = DistributiveOmit<NotificationContentInput, 'userId'>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Options of the kind-specific senders: addressing, optional wording, and the kind's payload. */
export interface KindNotificationOptions<T extends NotificationType> {
  workspaceId: string;
  /** Recipient; omit to notify every member of the workspace. */
  userId?: string;
  /** Defaults to a sentence built from `data`. */
  title?: string;
  body?: string;
  priority?: NotificationPriority;
  /** Retries with the same key deliver once. */
  idempotencyKey?: string;
  data: z.input<(typeof notificationPayloads)[T]>;
}

type Data<T extends NotificationType> = z.input<(typeof notificationPayloads)[T]>;

/** Default titles per kind, so server code can send with nothing but the payload. */
const defaultTitles: { [T in NotificationType]: (data: Data<T>) => string } = {
  mention: (d) => `${d.author} mentioned you on ${d.platform}`,
  message: (d) => `New message from ${d.from} on ${d.platform}`,
  approval: (d) =>
    d.status === 'pending'
      ? `${d.requestedBy} asks for approval of post ${d.postId}`
      : `Post ${d.postId} was ${d.status}`,
  alert: (d) => `${d.severity === 'critical' ? 'Critical alert' : 'Alert'}: ${d.message}`.slice(0, 200),
  post_published: (d) => `Post ${d.postId} was published on ${d.platform}`,
  post_failed: (d) => `Post ${d.postId} failed on ${d.platform}`,
  crisis: (d) => `Crisis (${d.severity}): ${d.topic}`.slice(0, 200),
  review: (d) => `New ${d.rating}-star review from ${d.author} on ${d.platform}`,
};

/**
 * The seed's publishing vocabulary over a running node's services, for server code without a
 * socket (`server.publish`). Every call is validated by the notification schemas and acts as the
 * trusted system; it resolves once the notification is stored and published.
 *
 * @example
 * const publish = createServicePublisher(server.services);
 * await publish.sendPostFailedNotification({
 *   workspaceId: 'acme',
 *   data: { postId: 'p1', platform: 'instagram', error: 'Token expired' },
 * });
 */
export function createServicePublisher<TRouter extends AnyTRPCRouter = AppRouter>(
  services: PulseServices,
  /** The router's registries (`kindsOfRouter(router)`): every call validates against them. */
  kinds: RouterKinds = { notifications: null, dashboard: null },
) {
  const { notifications, presence, dashboard, channels } = services;
  // NOTE: null = Pulse's own kinds (the services' defaults).
  const content = (kinds.notifications?.content ?? undefined) as
    | Parameters<typeof notifications.send>[2]
    | undefined;
  const dashboardSchema = kinds.dashboard?.publishInput;
  const publishValue = (input: DashboardPublishInput) => dashboard.publish(input, dashboardSchema);

  function sendKind<T extends NotificationType>(
    type: T,
    opts: KindNotificationOptions<T>,
  ): Promise<SendResult> {
    const { workspaceId, userId, title, body, priority, idempotencyKey, data } = opts;
    return notifications.send(
      'system',
      {
        workspaceId,
        userId,
        type,
        title: title ?? defaultTitles[type](data),
        body,
        priority,
        idempotencyKey,
        data,
      } as { workspaceId: string } & NotificationContentInput,
      content,
    );
  }

  const kindNames: readonly string[] = kinds.notifications?.types ?? Object.keys(defaultTitles);
  /** `notify.<kind>(opts)`: one sender per kind of the router (frozen; another name throws). */
  const notify = unknownKindGuard(
    kindNames,
    Object.freeze(
      Object.fromEntries(
        kindNames.map((name) => [
          name,
          (opts: KindNotificationOptions<NotificationType> & { title?: string }) => {
            const titleOf = (defaultTitles as Record<string, ((d: never) => string) | undefined>)[name];
            // NOTE: an app kind has no default title: without one, the send is refused on `title`.
            const title =
              opts.title ??
              (opts.data && typeof opts.data === 'object' ? titleOf?.(opts.data as never) : undefined);
            return notifications.send(
              'system',
              { ...opts, type: name, title } as unknown as { workspaceId: string } & NotificationContentInput,
              content,
            );
          },
        ]),
      ),
    ),
  ) as unknown as NotifyHelpers<TRouter>;

  return {
    /**
     * One sender per notification kind of the router (the app's `notificationKinds` included):
     * `notify.invoice_paid({ workspaceId, userId?, title, data })`. Pulse's kinds default their
     * title from `data`; an app kind needs `title`. Validated like `notifications.send` (BAD_REQUEST
     * with the zod path). Only the router's kinds have a sender (`Object.keys(notify)` lists them,
     * `'name' in notify` tells); reading another name (`notify.nope`) throws a BAD_REQUEST
     * `TRPCError` naming it and the router's kinds.
     */
    notify,
    /**
     * Publishes one event on an app channel (`defineChannel`) as trusted server code (`from:
     * 'system'`; `authorize` is not asked). The event is validated by the channel's schema; on a
     * durable channel it resolves once stored and published, with its id.
     *
     * @example
     * await server.publish.channel(comments, { workspaceId: 'acme', input: { postId: 'p1' }, event: { commentId: 'c1', text: 'Hi' } });
     */
    channel<C extends AnyChannel>(channel: C, input: ChannelPublishInput<C>): Promise<ChannelPublishResult> {
      return channels.publish('system', channel, input);
    },
    /** Sends one notification to one user of a workspace. */
    sendNotification(workspaceId: string, userId: string, message: NotificationMessage): Promise<SendResult> {
      return notifications.send('system', { ...message, workspaceId, userId }, content);
    },
    /** Sends one notification to every member of a workspace (read state is kept per user). */
    sendWorkspaceNotification(workspaceId: string, message: NotificationMessage): Promise<SendResult> {
      return notifications.send('system', { ...message, workspaceId, userId: undefined }, content);
    },
    /**
     * Sends one notification of any of the router's kinds (the app's `notificationKinds` included),
     * as trusted server code: the input is `notifications.send`'s, validated the same way (a bad
     * payload throws a BAD_REQUEST whose cause is the zod error).
     */
    notification(input: NotificationSendInputOf<TRouter>): Promise<NotificationSendOutputOf<TRouter>> {
      return notifications.send('system', input as never, content) as Promise<
        NotificationSendOutputOf<TRouter>
      >;
    },
    /**
     * Publishes one dashboard value of any of the router's kinds (the app's `dashboardKinds`
     * included): `dashboard.publish`'s input, validated the same way (a bad payload throws a
     * ZodError with the path).
     */
    dashboard(input: DashboardPublishInputOf<TRouter>): Promise<DashboardPublishOutputOf<TRouter>> {
      return dashboard.publish(input as DashboardPublishInput, dashboardSchema) as Promise<
        DashboardPublishOutputOf<TRouter>
      >;
    },
    /** Someone mentioned the brand or a team member on a platform. */
    sendMentionNotification: (opts: KindNotificationOptions<'mention'>) => sendKind('mention', opts),
    /** A direct message arrived. */
    sendMessageNotification: (opts: KindNotificationOptions<'message'>) => sendKind('message', opts),
    /** A post waits for (or received) an approval decision. */
    sendApprovalNotification: (opts: KindNotificationOptions<'approval'>) => sendKind('approval', opts),
    /** A crisis: `urgent` priority unless told otherwise. */
    sendCrisisAlert: (opts: KindNotificationOptions<'crisis'>) =>
      sendKind('crisis', { ...opts, priority: opts.priority ?? 'urgent' }),
    /** A scheduled post went live. */
    sendPostPublishedNotification: (opts: KindNotificationOptions<'post_published'>) =>
      sendKind('post_published', opts),
    /** A scheduled post failed: `high` priority unless told otherwise. */
    sendPostFailedNotification: (opts: KindNotificationOptions<'post_failed'>) =>
      sendKind('post_failed', { ...opts, priority: opts.priority ?? 'high' }),
    /** A customer review was posted. */
    sendReviewNotification: (opts: KindNotificationOptions<'review'>) => sendKind('review', opts),
    /** Everyone online in the workspace. */
    getWorkspacePresence(workspaceId: string): Promise<UserPresence[]> {
      return presence.list(workspaceId);
    },
    /** One user's presence in a workspace, or null when offline. */
    getUserPresence(workspaceId: string, userId: string): Promise<UserPresence | null> {
      return presence.get(workspaceId, userId);
    },
    isUserOnline(workspaceId: string, userId: string): Promise<boolean> {
      return presence.isOnline(workspaceId, userId);
    },
    /** A live metric of an account (impressions, reach…); it becomes the latest value for its key. */
    broadcastMetricUpdate: (opts: DashboardBroadcast<'metric'>): Promise<DashboardPublishResult> =>
      publishValue({ ...opts, kind: 'metric' }),
    /** A post's status and counters. */
    broadcastPostUpdate: (opts: DashboardBroadcast<'post'>): Promise<DashboardPublishResult> =>
      publishValue({ ...opts, kind: 'post' }),
    /** Aggregated analytics of an account over a period. */
    broadcastAnalyticsUpdate: (opts: DashboardBroadcast<'analytics'>): Promise<DashboardPublishResult> =>
      publishValue({ ...opts, kind: 'analytics' }),
    /** The follower count of an account. */
    broadcastFollowerUpdate: (opts: DashboardBroadcast<'followers'>): Promise<DashboardPublishResult> =>
      publishValue({ ...opts, kind: 'followers' }),
    /** Engagement of an account or one post. */
    broadcastEngagementUpdate: (opts: DashboardBroadcast<'engagement'>): Promise<DashboardPublishResult> =>
      publishValue({ ...opts, kind: 'engagement' }),
  };
}

// NOTE: names generic code reads off any object to detect a protocol (await, JSON, test matchers,
// React elements, DOM nodes): they stay `undefined` instead of throwing.
const protocolNames = new Set([
  'then',
  'toJSON',
  'asymmetricMatch',
  '$$typeof',
  'nodeType',
  'tagName',
  '_isMockFunction',
  '@@__IMMUTABLE_ITERABLE__@@',
  '@@__IMMUTABLE_RECORD__@@',
]);

/**
 * `senders` behind a guard: reading a string name that is neither a sender nor an `Object`
 * member throws a BAD_REQUEST `TRPCError` that names it and lists the known kinds (a JS caller of
 * `notify.nope(...)` gets that instead of "notify.nope is not a function"). Keys, `in`, spread and
 * symbols behave as on the plain object.
 */
function unknownKindGuard<T extends object>(kindNames: readonly string[], senders: T): T {
  return new Proxy(senders, {
    get(target, key, receiver) {
      if (typeof key !== 'string' || key in target || protocolNames.has(key))
        return Reflect.get(target, key, receiver);
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `notify.${key}: "${key}" is not a notification kind of this router (its kinds: ${kindNames.join(', ')})`,
      });
    },
  });
}

/** Options of a dashboard `broadcast*` method: the workspace, the value's fields and an optional `at`. */
export type DashboardBroadcast<K extends DashboardKind> = Omit<
  Extract<DashboardPublishInput, { kind: K }>,
  'kind'
>;

type In<R extends AnyTRPCRouter> = inferRouterInputs<R>;
type SendOf<R extends AnyTRPCRouter> =
  NotificationSendInputOf<R> extends infer S
    ? S extends { type: string; data?: unknown }
      ? S
      : never
    : never;
/** `notify.<kind>` of a publisher: one sender per notification kind of the router. */
export type NotifyHelpers<R extends AnyTRPCRouter> = {
  [T in SendOf<R>['type']]: (
    opts: Omit<Extract<SendOf<R>, { type: T }>, 'type' | 'title'> &
      (T extends NotificationType ? { title?: string } : { title: string }),
  ) => Promise<NotificationSendOutputOf<R>>;
};
type Out<R extends AnyTRPCRouter> = inferRouterOutputs<R>;
/** `notifications.send`'s input with the router's kinds. */
export type NotificationSendInputOf<R extends AnyTRPCRouter> =
  In<R> extends {
    notifications: { send: infer I };
  }
    ? I
    : never;
type NotificationSendOutputOf<R extends AnyTRPCRouter> =
  Out<R> extends { notifications: { send: infer O } } ? O : never;
/** `dashboard.publish`'s input with the router's kinds. */
export type DashboardPublishInputOf<R extends AnyTRPCRouter> =
  In<R> extends {
    dashboard: { publish: infer I };
  }
    ? I
    : never;
type DashboardPublishOutputOf<R extends AnyTRPCRouter> =
  Out<R> extends { dashboard: { publish: infer O } } ? O : never;

/** What `server.publish` offers (typed with the node's router: `notification` / `dashboard` take its kinds). */
export type ServicePublisher<TRouter extends AnyTRPCRouter = AppRouter> = ReturnType<
  typeof createServicePublisher<TRouter>
>;
