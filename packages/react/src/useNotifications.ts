import { type PulseError, toPulseError } from '@pulse/client';
import type { Notification } from '@pulse/client';
import type {
  NotificationCounts,
  NotificationFeedEvent,
  NotificationStatus,
  NotificationType,
} from '@pulse/client';
import { getQueryKey } from '@trpc/react-query';
import {
  type InfiniteData,
  matchQuery,
  type QueryCacheNotifyEvent,
  type QueryClient,
  useQueryClient,
} from '@tanstack/react-query';
import { FeedLog } from './feed-log.js';
import { useCallback, useMemo, useRef, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { type RouterOutputs, trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

type NotificationPage = RouterOutputs['notifications']['list'];
type Counts = RouterOutputs['notifications']['counts'];
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
function inTarget(n: Notification, target: Target) {
  if (target instanceof Set) return target.has(n.id);
  const t = target as { kinds?: NotificationType[]; upTo?: string };
  if (t.kinds && !t.kinds.includes(n.type)) return false;
  return t.upTo === undefined || BigInt(n.eventId) <= BigInt(t.upTo);
}

type Target = ReadonlySet<string> | { kinds?: NotificationType[]; upTo?: string };

/** A live event that changes the lists or the counts (the ones the feed's log keeps). */
type ChangeEvent = Extract<NotificationFeedEvent, { type: 'notification' | 'read' | 'state' }>;

/** What the feed's log keeps per stream id: a live event, or the counts a mutation's answer carried. */
type LogEntry = { event: ChangeEvent } | { counts: NotificationCounts };

/** The stream position an answer was read at (`asOf`); undefined from a server that sends none. */
function positionOf(answer: { asOf?: string } | undefined): bigint | undefined {
  return answer?.asOf === undefined ? undefined : BigInt(answer.asOf);
}

/**
 * A state change applied to a list's pages. With a stream id (a live or re-applied event), pages
 * already read at or past it are left as they are and the others move to it; without one (an
 * optimistic change) every page gets it. `refetch`: the change may add items the list does not hold.
 */
function changePages(
  data: ListData,
  filter: ListFilter,
  change: StateChange,
  target: Target,
  at: string,
  id: bigint | null,
): { data: ListData; refetch: boolean } {
  let touched = false;
  const pages = data.pages.map((page) => {
    const position = positionOf(page);
    if (id !== null && position !== undefined && id <= position) return page;
    touched = true;
    return {
      ...page,
      items: page.items
        .map((n) => (inTarget(n, target) ? changed(n, change, at) : n))
        .filter((n) => matchesNotificationFilter(filter, n)),
      ...(id !== null && position !== undefined ? { asOf: String(id) } : {}),
    };
  });
  if (!touched) return { data, refetch: false };
  return { data: { ...data, pages }, refetch: canAdd(filter, change) };
}

/**
 * A list with one logged entry at stream id `id` applied: a new notification goes on top of the
 * first page unless that page was read at or past `id` or holds it already; a read / state event
 * changes the pages read before it; a mutation's counts leave the list as it is.
 */
function listWithEntry(
  data: ListData,
  filter: ListFilter,
  id: bigint,
  entry: LogEntry,
): { data: ListData; refetch: boolean } {
  if ('counts' in entry) return { data, refetch: false };
  const event = entry.event;
  if (event.type === 'read' || event.type === 'state') {
    const target = event.all && event.ids.length === 0 ? {} : new Set(event.ids);
    const change = event.type === 'read' ? 'read' : event.action;
    return changePages(data, filter, change, target, event.at, id);
  }
  const [first, ...rest] = data.pages;
  if (!first) return { data, refetch: false };
  const position = positionOf(first);
  if (position !== undefined && id <= position) return { data, refetch: false };
  const incoming = newNotification(event);
  const add =
    matchesNotificationFilter(filter, incoming) &&
    !data.pages.some((page) => page.items.some((n) => n.id === incoming.id));
  if (!add && position === undefined) return { data, refetch: false };
  return {
    data: {
      ...data,
      pages: [
        {
          ...first,
          items: add ? [incoming, ...first.items] : first.items,
          ...(position !== undefined ? { asOf: String(id) } : {}),
        },
        ...rest,
      ],
    },
    refetch: false,
  };
}

/**
 * The counts with one logged entry at stream id `id` applied, unless they were read at or past it
 * (`asOf`). Counts without `asOf` (a server that sends none) count a new notification only when
 * `knownToLists` is false, as before `asOf` existed.
 */
function countsWithEntry(
  counts: Counts | undefined,
  id: bigint,
  entry: LogEntry,
  knownToLists: boolean,
): Counts | undefined {
  if (!counts) return counts;
  const position = positionOf(counts);
  if (position !== undefined && id <= position) return counts;
  let next: NotificationCounts;
  if ('counts' in entry) next = entry.counts;
  else {
    const event = entry.event;
    if (event.type === 'notification') {
      if (position === undefined && knownToLists) return counts;
      const incoming = newNotification(event);
      next = {
        unseen: counts.unseen + (incoming.seenAt ? 0 : 1),
        unread: counts.unread + (incoming.readAt ? 0 : 1),
      };
    } else if (event.type === 'read') next = event.counts ?? { ...counts, unread: event.unreadCount };
    else next = event.counts;
  }
  return {
    ...counts,
    unseen: next.unseen,
    unread: next.unread,
    ...(position !== undefined ? { asOf: String(id) } : {}),
  };
}

function newNotification(event: Extract<NotificationFeedEvent, { type: 'notification' }>): Notification {
  return { seenAt: null, archivedAt: null, ...event.notification };
}

const listKeyOf = (workspaceId: string) => getQueryKey(trpc.notifications.list, { workspaceId }, 'infinite');
const countsKeyOf = (workspaceId: string) => getQueryKey(trpc.notifications.counts, { workspaceId }, 'query');

/**
 * Applies an optimistic state change to every cached list of the workspace: patches the items,
 * drops those that no longer match their list's filter, and refetches lists it may add items to.
 */
function applyChange(
  queryClient: QueryClient,
  utils: Utils,
  workspaceId: string,
  change: StateChange,
  target: Target,
  at: string,
) {
  for (const [queryKey, data] of queryClient.getQueriesData<ListData>({ queryKey: listKeyOf(workspaceId) })) {
    if (!data) continue;
    const filter = (queryKey[1] as { input: ListFilter }).input;
    const result = changePages(data, filter, change, target, at, null);
    queryClient.setQueryData<ListData>(queryKey, result.data);
    if (result.refetch) void utils.notifications.list.invalidate(filter);
  }
}

/** Everything of a workspace's feed is read again (a reset, a restarted subscription). */
function refetchFeed(utils: Utils, workspaceId: string) {
  void utils.notifications.list.invalidate({ workspaceId });
  void utils.notifications.counts.invalidate({ workspaceId });
  void utils.notifications.preferences.get.invalidate({ workspaceId });
}

/**
 * Applies one logged entry (a live event, or a mutation's counts) at stream id `id` to every
 * cached list and the counts of the workspace.
 */
function applyEntry(
  queryClient: QueryClient,
  utils: Utils,
  workspaceId: string,
  id: bigint,
  entry: LogEntry,
) {
  let known = false;
  for (const [queryKey, data] of queryClient.getQueriesData<ListData>({ queryKey: listKeyOf(workspaceId) })) {
    if (!data) continue;
    if ('event' in entry && entry.event.type === 'notification') {
      const incomingId = entry.event.notification.id;
      if (data.pages.some((page) => page.items.some((n) => n.id === incomingId))) known = true;
    }
    const filter = (queryKey[1] as { input: ListFilter }).input;
    const result = listWithEntry(data, filter, id, entry);
    if (result.data !== data) queryClient.setQueryData<ListData>(queryKey, result.data);
    if (result.refetch) void utils.notifications.list.invalidate(filter);
  }
  // NOTE: counts without `asOf` (an older server) count a notification only when it is new to the
  // cached lists, so a replay after a refetch does not count twice; with `asOf` the position decides.
  utils.notifications.counts.setData({ workspaceId }, (c) => countsWithEntry(c, id, entry, known));
}

/**
 * Completes an HTTP answer of the workspace's list or counts as it lands: the live events (and
 * mutation counts) the log holds past the answer's `asOf` are applied on top of it, since it was
 * read before they were stored. An answer older than the log reaches is read again.
 */
function completeAnswer(
  queryClient: QueryClient,
  workspaceId: string,
  log: FeedLog<LogEntry>,
  event: QueryCacheNotifyEvent,
) {
  if (event.type !== 'updated' || event.action.type !== 'success' || event.action.manual) return;
  const { query } = event;
  const readAgain = () => void queryClient.invalidateQueries({ queryKey: query.queryKey, exact: true });
  if (matchQuery({ queryKey: listKeyOf(workspaceId) }, query)) {
    const data = event.action.data as ListData | undefined;
    if (!data || data.pages.length === 0) return;
    let from: bigint | undefined;
    for (const page of data.pages) {
      const position = positionOf(page);
      if (position === undefined) return; // an older server: nothing to complete
      if (from === undefined || position < from) from = position;
    }
    const entries = log.after(from as bigint);
    if (!entries) return readAgain();
    const filter = (query.queryKey[1] as { input: ListFilter }).input;
    let next = data;
    let refetch = false;
    for (const { id, value } of entries) {
      const result = listWithEntry(next, filter, id, value);
      next = result.data;
      refetch ||= result.refetch;
    }
    if (next !== data) queryClient.setQueryData<ListData>(query.queryKey, next);
    if (refetch) readAgain();
    return;
  }
  if (matchQuery({ queryKey: countsKeyOf(workspaceId), exact: true }, query)) {
    const counts = event.action.data as Counts | undefined;
    const position = positionOf(counts);
    if (position === undefined) return;
    const entries = log.after(position);
    if (!entries) return readAgain();
    let next = counts;
    for (const { id, value } of entries) next = countsWithEntry(next, id, value, true);
    if (next !== counts) queryClient.setQueryData<Counts>(query.queryKey, next);
  }
}

/** Applies one feed event to the query cache: run once per event by the shared subscription. */
function applyFeedEvent(
  queryClient: QueryClient,
  utils: Utils,
  workspaceId: string,
  tracked: TrackedFeedEvent,
  log: FeedLog<LogEntry>,
  lastRevision: Map<string, number>,
) {
  const event = tracked.data;
  switch (event.type) {
    case 'notification':
    case 'read':
    case 'state': {
      const id = BigInt(tracked.id);
      const entry: LogEntry = { event };
      // NOTE: kept for the answers on their way (see `completeAnswer`); the event replaces a
      // mutation's counts logged at its id (same position, and it also carries the list change).
      log.add(id, entry, (existing) => 'counts' in existing);
      applyEntry(queryClient, utils, workspaceId, id, entry);
      return;
    }
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

/** A feed event with its stream id (tRPC's `tracked`). */
interface TrackedFeedEvent {
  id: string;
  data: NotificationFeedEvent;
}

/** The log of each shared feed subscription (the hooks log their mutations' counts in it). */
const feedLogs = new WeakMap<object, FeedLog<LogEntry>>();

/**
 * The one `notifications.onFeed` subscription of a workspace, shared by every notifications and
 * preferences hook of that workspace (one server subscription per workspace per provider). It
 * applies each live event to the cache once and keeps the recent ones (`FeedLog`), so a list or
 * counts answer that was read before an event and lands after it gets the event back (`asOf`).
 * @internal
 */
export function useNotificationFeed(workspaceId: string, enabled: boolean) {
  const utils = trpc.useUtils();
  const queryClient = useQueryClient();
  const { client, subscriptions } = usePulseContext();
  let created: FeedLog<LogEntry> | undefined;
  const entry = enabled
    ? subscriptions.get(subscriptionKey('notifications.onFeed', { workspaceId }), () => {
        const lastRevision = new Map<string, number>();
        const log = new FeedLog<LogEntry>(FEED_LOG_SIZE);
        created = log;
        return {
          open: (handlers) => {
            const stopCompleting = queryClient
              .getQueryCache()
              .subscribe((event) => completeAnswer(queryClient, workspaceId, log, event));
            const { unsubscribe } = client.trpc.notifications.onFeed.subscribe(
              { workspaceId },
              { ...handlers, onData: (tracked) => handlers.onData(tracked as TrackedFeedEvent) },
            );
            return () => {
              stopCompleting();
              unsubscribe();
            };
          },
          onEvent: (event: TrackedFeedEvent) =>
            applyFeedEvent(queryClient, utils, workspaceId, event, log, lastRevision),
          // NOTE: a restarted subscription has no resume point: what it feeds is read again.
          onRestart: () => refetchFeed(utils, workspaceId),
        };
      })
    : null;
  if (entry && created) feedLogs.set(entry, created);
  const reading = useSharedSubscription(entry, () => null);
  return { ...reading, log: entry ? (feedLogs.get(entry) ?? null) : null };
}

/** Live events a feed keeps for the answers on their way (more while one is: it is read again). */
const FEED_LOG_SIZE = 256;

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
  const feedLogRef = useRef(shared.log);
  feedLogRef.current = shared.log;
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
  // NOTE: only the numbers: `asOf` moves with every live change, which must not re-render by itself.
  const counts = trpc.notifications.counts.useQuery({ workspaceId }, { enabled: live, select: countsOnly });

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
          const position = positionOf(result);
          if (position === undefined || !feedLogRef.current) {
            utils.notifications.counts.setData({ workspaceId }, (c) => (c ? { ...c, ...result.counts } : c));
            return;
          }
          // NOTE: the result's counts are as of its stream id: live events past it (already applied,
          // or still to come) stay counted, and an answer read before it gets them from the log.
          const entry: LogEntry = { counts: result.counts };
          feedLogRef.current.add(position, entry);
          applyEntry(queryClient, utils, workspaceId, position, entry);
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

const countsOnly = (c: Counts): NotificationCounts => ({ unseen: c.unseen, unread: c.unread });

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
