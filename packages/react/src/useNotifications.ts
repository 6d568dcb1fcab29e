import { type PulseError, toPulseError } from '@pulse/client';
import type { Notification } from '@pulse/client';
import type { NotificationFeedEvent, NotificationStatus, NotificationType } from '@pulse/client';
import { getQueryKey } from '@trpc/react-query';
import { type InfiniteData, type QueryClient, useQueryClient } from '@tanstack/react-query';
import { useCallback, useMemo, useRef, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { type RouterOutputs, trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

type NotificationPage = RouterOutputs['notifications']['list'];
type ListData = InfiniteData<NotificationPage, unknown>;
type Utils = ReturnType<typeof trpc.useUtils>;

export type { NotificationStatus };

/** Which notifications a bulk action touches: these ids, or everything (optionally of some kinds) up to an event id. */
export type NotificationTarget<TKind = NotificationType> =
  | string[]
  | { all: true; kinds?: TKind[]; upTo?: string };

/**
 * Options of `useNotifications`. `TItem` / `TKind` are the router's notification and kind types
 * (Pulse's own unless the hook comes from `createPulseHooks<AppRouter>()`).
 */
export interface UseNotificationsOptions<
  TSelected = Notification[],
  TItem = Notification,
  TKind = NotificationType,
> {
  /** Page size of `items` and `fetchMore` (default 20). */
  pageSize?: number;
  /** Which notifications `items` holds: `all` (archived too), `unseen`, `unread`, `read`, `archived`; default: everything not archived. */
  status?: NotificationStatus;
  /** Only these kinds in `items` (the counts are over every kind). */
  kinds?: TKind[];
  /** Set false to pause (no subscription, no queries). */
  enabled?: boolean;
  /**
   * Picks what this component needs from the items (e.g. `(items) => items.length`): `items` is then
   * its value, and the component re-renders only when that value changes (compared structurally, as
   * TanStack Query's `select`), not on every notification. Must not return `undefined`.
   */
  select?: (items: TItem[]) => TSelected;
}

export interface UseNotificationsResult<TSelected = Notification[], TKind = NotificationType> {
  /** The viewer's notifications matching the filter, newest first (loaded pages, live ones prepended); or `select`'s value. */
  items: TSelected;
  /** Loads the next (older) page. */
  fetchMore: () => void;
  hasMore: boolean;
  /** Unseen notifications (the badge); moves in every tab when any tab marks seen or read. */
  unseenCount: number;
  /** Unread notifications; moves in every tab when any tab marks read. */
  unreadCount: number;
  /** Marks seen; without a target: everything up to the newest item on screen ("mark all seen" on opening the bell). */
  markSeen: (target?: NotificationTarget<TKind>) => void;
  /** Marks read (reading marks seen too). */
  markRead: (target: NotificationTarget<TKind>) => void;
  /** Marks everything read (as `markRead({ all: true })`). */
  markAllRead: () => void;
  /** Archives: the items leave the default list and the counts. */
  archive: (target: NotificationTarget<TKind>) => void;
  /** Brings archived items back. */
  unarchive: (target: NotificationTarget<TKind>) => void;
  status: LiveStatus;
  error: PulseError | null;
}

interface ListFilter {
  workspaceId: string;
  limit: number;
  status?: NotificationStatus;
  kinds?: NotificationType[];
}

/** Whether a notification (with its state) belongs in a list with this filter. */
export function matchesNotificationFilter(
  filter: Pick<ListFilter, 'status' | 'kinds'>,
  n: Pick<Notification, 'type' | 'readAt' | 'seenAt' | 'archivedAt'>,
): boolean {
  if (filter.kinds && !filter.kinds.includes(n.type)) return false;
  const archived = Boolean(n.archivedAt);
  switch (filter.status) {
    case undefined:
      return !archived;
    case 'all':
      return true;
    case 'archived':
      return archived;
    case 'unseen':
      return !archived && !n.seenAt;
    case 'unread':
      return !archived && !n.readAt;
    case 'read':
      return !archived && Boolean(n.readAt);
  }
}

type StateChange = 'seen' | 'read' | 'archived' | 'unarchived';

/** The state fields a change sets. */
function changed(n: Notification, change: StateChange, at: string): Notification {
  switch (change) {
    case 'seen':
      return n.seenAt ? n : { ...n, seenAt: at };
    case 'read':
      return n.readAt ? n : { ...n, readAt: at, seenAt: n.seenAt ?? at };
    case 'archived':
      return n.archivedAt ? n : { ...n, archivedAt: at };
    case 'unarchived':
      return n.archivedAt ? { ...n, archivedAt: null } : n;
  }
}

/** Whether a change can bring into a list items it does not hold (then the list is refetched). */
function canAdd(filter: ListFilter, change: StateChange): boolean {
  if (change === 'archived') return filter.status === 'archived';
  if (change === 'unarchived') return filter.status !== 'archived';
  return change === 'read' && filter.status === 'read';
}

/** Whether a notification is selected by a target (`upTo` compared as stream ids). */
function inTarget(
  n: Notification,
  target: ReadonlySet<string> | { kinds?: NotificationType[]; upTo?: string },
) {
  if (target instanceof Set) return target.has(n.id);
  const t = target as { kinds?: NotificationType[]; upTo?: string };
  if (t.kinds && !t.kinds.includes(n.type)) return false;
  return t.upTo === undefined || BigInt(n.eventId) <= BigInt(t.upTo);
}

/**
 * Applies a state change to every cached list of the workspace: patches the items, drops those that
 * no longer match their list's filter, and refetches lists the change may add items to.
 */
function applyChange(
  queryClient: QueryClient,
  utils: Utils,
  workspaceId: string,
  change: StateChange,
  target: ReadonlySet<string> | { kinds?: NotificationType[]; upTo?: string },
  at: string,
) {
  const key = getQueryKey(trpc.notifications.list, { workspaceId }, 'infinite');
  for (const [queryKey, data] of queryClient.getQueriesData<ListData>({ queryKey: key })) {
    if (!data) continue;
    const filter = (queryKey[1] as { input: ListFilter }).input;
    queryClient.setQueryData<ListData>(queryKey, {
      ...data,
      pages: data.pages.map((page) => ({
        ...page,
        items: page.items
          .map((n) => (inTarget(n, target) ? changed(n, change, at) : n))
          .filter((n) => matchesNotificationFilter(filter, n)),
      })),
    });
    if (canAdd(filter, change)) void utils.notifications.list.invalidate(filter);
  }
}

/** Everything of a workspace's feed is read again (a reset, a restarted subscription). */
function refetchFeed(utils: Utils, workspaceId: string) {
  void utils.notifications.list.invalidate({ workspaceId });
  void utils.notifications.counts.invalidate({ workspaceId });
  void utils.notifications.preferences.get.invalidate({ workspaceId });
}

/** Applies one feed event to the query cache: run once per event by the shared subscription. */
function applyFeedEvent(
  queryClient: QueryClient,
  utils: Utils,
  workspaceId: string,
  event: NotificationFeedEvent,
  lastRevision: Map<string, number>,
) {
  switch (event.type) {
    case 'notification': {
      const incoming: Notification = { seenAt: null, archivedAt: null, ...event.notification };
      const key = getQueryKey(trpc.notifications.list, { workspaceId }, 'infinite');
      let known = false;
      for (const [queryKey, data] of queryClient.getQueriesData<ListData>({ queryKey: key })) {
        if (!data) continue;
        if (data.pages.some((page) => page.items.some((n) => n.id === incoming.id))) {
          known = true;
          continue;
        }
        const filter = (queryKey[1] as { input: ListFilter }).input;
        if (!matchesNotificationFilter(filter, incoming)) continue;
        const [first, ...rest] = data.pages;
        queryClient.setQueryData<ListData>(queryKey, {
          ...data,
          pages: [{ ...first!, items: [incoming, ...first!.items] }, ...rest],
        });
      }
      // NOTE: counted only when new to the cached lists: a replay after a refetch must not count twice.
      if (!known)
        utils.notifications.counts.setData({ workspaceId }, (c) =>
          c === undefined
            ? c
            : {
                unseen: c.unseen + (incoming.seenAt ? 0 : 1),
                unread: c.unread + (incoming.readAt ? 0 : 1),
              },
        );
      return;
    }
    case 'read':
      applyChange(
        queryClient,
        utils,
        workspaceId,
        'read',
        event.all && event.ids.length === 0 ? {} : new Set(event.ids),
        event.at,
      );
      utils.notifications.counts.setData(
        { workspaceId },
        (c) => event.counts ?? (c ? { ...c, unread: event.unreadCount } : c),
      );
      return;
    case 'state':
      applyChange(
        queryClient,
        utils,
        workspaceId,
        event.action,
        event.all && event.ids.length === 0 ? {} : new Set(event.ids),
        event.at,
      );
      utils.notifications.counts.setData({ workspaceId }, event.counts);
      return;
    case 'preferences': {
      // NOTE: newest revision per scope wins (a replayed or late event never moves settings back).
      const scope = event.scope;
      if ((lastRevision.get(scope) ?? 0) >= event.revision) return;
      lastRevision.set(scope, event.revision);
      utils.notifications.preferences.get.setData({ workspaceId }, (p) =>
        p
          ? {
              ...p,
              user: event.user ?? p.user,
              workspace: event.workspace ?? p.workspace,
            }
          : p,
      );
      // `effective` is the server's to compute: read it again.
      void utils.notifications.preferences.get.invalidate({ workspaceId });
      return;
    }
    case 'sync':
      // The stream's resume point (kept by the client); nothing to show.
      return;
    case 'reset':
      refetchFeed(utils, workspaceId);
      return;
    default:
      return assertNever(event);
  }
}

/**
 * The one `notifications.onFeed` subscription of a workspace, shared by every notifications and
 * preferences hook of that workspace (one server subscription per workspace per provider).
 * @internal
 */
export function useNotificationFeed(workspaceId: string, enabled: boolean) {
  const utils = trpc.useUtils();
  const queryClient = useQueryClient();
  const { client, subscriptions } = usePulseContext();
  const entry = enabled
    ? subscriptions.get(subscriptionKey('notifications.onFeed', { workspaceId }), () => {
        const lastRevision = new Map<string, number>();
        return {
          open: (handlers) =>
            client.trpc.notifications.onFeed.subscribe(
              { workspaceId },
              { ...handlers, onData: (tracked) => handlers.onData(tracked.data) },
            ).unsubscribe,
          onEvent: (event: NotificationFeedEvent) =>
            applyFeedEvent(queryClient, utils, workspaceId, event, lastRevision),
          // NOTE: a restarted subscription has no resume point: what it feeds is read again.
          onRestart: () => refetchFeed(utils, workspaceId),
        };
      })
    : null;
  return useSharedSubscription(entry, () => null);
}

/**
 * The viewer's notifications in a workspace, live: new ones appear at the top, `unseenCount` (the
 * badge) and `unreadCount` follow seen / read / archive changes from every tab, a dropped
 * connection resumes from the last event (nothing lost, nothing twice), and a `reset` (resume point
 * past retention) refetches. Every notifications hook of a workspace shares one server
 * subscription (`notifications.onFeed`), whatever its filter; TanStack Query shares the lists.
 *
 * @example
 * ```tsx
 * function Bell({ workspaceId }: { workspaceId: string }) {
 *   const { items, unseenCount, markSeen, markRead, archive, hasMore, fetchMore } = useNotifications(workspaceId);
 *   return (
 *     <Menu badge={unseenCount} onOpen={() => markSeen()}>
 *       {items.map((n) => (
 *         <Item key={n.id} bold={!n.readAt} onClick={() => markRead([n.id])} onArchive={() => archive([n.id])}>
 *           {n.title}
 *         </Item>
 *       ))}
 *       {hasMore && <button onClick={fetchMore}>More</button>}
 *     </Menu>
 *   );
 * }
 * ```
 */
// NOTE: overloads, not only a defaulted generic: `ReturnType<typeof hook>` (used by apps to name
// the result) reads the last overload, so it stays the default result instead of `TSelected = unknown`.
export function useNotifications<TSelected>(
  workspaceId: string,
  opts: UseNotificationsOptions<TSelected> & { select: (items: Notification[]) => TSelected },
): UseNotificationsResult<TSelected>;
export function useNotifications(workspaceId: string, opts?: UseNotificationsOptions): UseNotificationsResult;
export function useNotifications<TSelected = Notification[]>(
  workspaceId: string,
  opts: UseNotificationsOptions<TSelected> = {},
): UseNotificationsResult<TSelected> {
  const utils = trpc.useUtils();
  const queryClient = useQueryClient();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const listInput: ListFilter = {
    workspaceId,
    limit: opts.pageSize ?? 20,
    ...(opts.status ? { status: opts.status } : {}),
    ...(opts.kinds ? { kinds: opts.kinds } : {}),
  };
  const [actionError, setActionError] = useState<PulseError | null>(null);

  const shared = useNotificationFeed(workspaceId, enabled);
  // NOTE: the list and counts are read only once the subscription is live, so a notification sent
  // in between is either in the first page or arrives as an event (deduplicated by id), never lost.
  const live = enabled && shared.started;
  const { select } = opts;
  // NOTE: the items are flattened and selected inside TanStack Query's `select`, whose structural
  // sharing keeps the previous value when the new one is equal: a component selecting
  // `items.length` is not re-rendered when an item changes in place. Memoized on `select`, so a
  // stable selector is not re-run on every render.
  const selectItems = useCallback(
    (data: ListData): TSelected => {
      const items = flattenNotifications(data.pages);
      return select ? select(items) : (items as TSelected);
    },
    [select],
  );
  const list = trpc.notifications.list.useInfiniteQuery(listInput, {
    getNextPageParam: (page) => page.nextCursor ?? undefined,
    enabled: live,
    // tRPC types `select` as returning pages; it returns what TanStack Query's `select` returns.
    select: selectItems as never,
  });
  const counts = trpc.notifications.counts.useQuery({ workspaceId }, { enabled: live });

  const selected = list.data as TSelected | undefined;
  const items = useMemo(
    () => selected ?? (select ? select(noNotifications) : (noNotifications as TSelected)),
    [selected, select],
  );
  const listInputRef = useRef(listInput);
  listInputRef.current = listInput;

  const markSeenMutation = trpc.notifications.markSeen.useMutation();
  const markReadMutation = trpc.notifications.markRead.useMutation();
  const archiveMutation = trpc.notifications.archive.useMutation();
  const unarchiveMutation = trpc.notifications.unarchive.useMutation();
  const mutations = {
    seen: markSeenMutation,
    read: markReadMutation,
    archived: archiveMutation,
    unarchived: unarchiveMutation,
  };
  const mutationsRef = useRef(mutations);
  mutationsRef.current = mutations;

  /** Optimistically applies a change to the cached lists, then sends it; the result's counts win. */
  const run = useCallback(
    (change: StateChange, target: NotificationTarget) => {
      if (Array.isArray(target) && target.length === 0) return;
      applyChange(
        queryClient,
        utils,
        workspaceId,
        change,
        Array.isArray(target) ? new Set(target) : target,
        new Date().toISOString(),
      );
      const input = Array.isArray(target)
        ? { workspaceId, ids: target }
        : {
            workspaceId,
            all: true as const,
            ...(target.kinds ? { kinds: target.kinds } : {}),
            ...(target.upTo ? { upTo: target.upTo } : {}),
          };
      mutationsRef.current[change].mutate(input, {
        onSuccess: (result) => {
          setActionError(null);
          utils.notifications.counts.setData({ workspaceId }, result.counts);
        },
        onError: (error) => {
          setActionError(toPulseError(error));
          void utils.notifications.list.invalidate({ workspaceId });
          void utils.notifications.counts.invalidate({ workspaceId });
        },
      });
    },
    [queryClient, utils, workspaceId],
  );
  const markSeen = useCallback(
    (target?: NotificationTarget) => {
      if (target) return run('seen', target);
      // NOTE: "all up to the newest on screen": a notification arriving meanwhile stays unseen. Read
      // from the cache (not `items`, which may be `select`'s value).
      const data = utils.notifications.list.getInfiniteData(listInputRef.current);
      const newest = flattenNotifications(data?.pages).reduce<string | null>(
        (max, n) => (max === null || BigInt(n.eventId) > BigInt(max) ? n.eventId : max),
        null,
      );
      if (newest !== null) run('seen', { all: true, upTo: newest });
    },
    [run, utils],
  );
  const markRead = useCallback((target: NotificationTarget) => run('read', target), [run]);
  const markAllRead = useCallback(() => run('read', { all: true }), [run]);
  const archive = useCallback((target: NotificationTarget) => run('archived', target), [run]);
  const unarchive = useCallback((target: NotificationTarget) => run('unarchived', target), [run]);

  const { fetchNextPage } = list;
  const fetchMore = useCallback(() => void fetchNextPage(), [fetchNextPage]);

  const queryError = list.error ?? counts.error;
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? queryError,
    hasData: list.data !== undefined && counts.data !== undefined,
    extraError: actionError,
  });
  return {
    items,
    fetchMore,
    hasMore: list.hasNextPage,
    unseenCount: counts.data?.unseen ?? 0,
    unreadCount: counts.data?.unread ?? 0,
    markSeen,
    markRead,
    markAllRead,
    archive,
    unarchive,
    status,
    error,
  };
}

const noNotifications: Notification[] = [];

/** The loaded pages' notifications, newest first, each once. */
function flattenNotifications(pages: readonly NotificationPage[] | undefined): Notification[] {
  const seen = new Set<string>();
  const out: Notification[] = [];
  for (const page of pages ?? [])
    for (const n of page.items) {
      if (seen.has(n.id)) continue;
      seen.add(n.id);
      out.push(n);
    }
  return out;
}

function assertNever(value: never): never {
  throw new Error(`Unexpected event: ${JSON.stringify(value)}`);
}
