import { type PulseError, toPulseError } from '@pulse/client';
import type { Notification, NotificationEvent } from '@pulse/client';
import type { InfiniteData } from '@tanstack/react-query';
import { useCallback, useMemo, useRef, useState } from 'react';
import { type LiveStatus, liveState, useSubscriptionRecovery } from './live-status.js';
import { usePulseContext } from './PulseProvider.js';
import { subscriptionKey, useSharedSubscription } from './shared-subscription.js';
import { type RouterOutputs, trpc } from './trpc.js';
import { useConnectionState } from './useConnectionStatus.js';

type NotificationPage = RouterOutputs['notifications']['list'];

export interface UseNotificationsOptions {
  /** Page size of `items` and `fetchMore` (default 20). */
  pageSize?: number;
  /** Set false to pause (no subscription, no queries). */
  enabled?: boolean;
}

export interface UseNotificationsResult {
  /** The viewer's notifications, newest first (loaded pages, live ones prepended). */
  items: Notification[];
  /** Loads the next (older) page. */
  fetchMore: () => void;
  hasMore: boolean;
  /** Unread notifications; moves in every tab when any tab marks read. */
  unreadCount: number;
  markRead: (ids: string[]) => void;
  markAllRead: () => void;
  status: LiveStatus;
  error: PulseError | null;
}

/** Marks notifications read in cached pages (`ids`, or all of them). */
function markPages<T extends InfiniteData<NotificationPage, unknown>>(
  data: T | undefined,
  ids: ReadonlySet<string> | 'all',
  at: string,
): T | undefined {
  if (!data) return data;
  return {
    ...data,
    pages: data.pages.map((page) => ({
      ...page,
      items: page.items.map((n) =>
        n.readAt === null && (ids === 'all' || ids.has(n.id)) ? { ...n, readAt: at } : n,
      ),
    })),
  };
}

/**
 * The viewer's notifications in a workspace, live: new ones appear at the top, `unreadCount`
 * follows reads from every tab, a dropped connection resumes from the last event (nothing lost,
 * nothing twice), and a `reset` (resume point past retention) refetches. Every hook with the same
 * workspace and page size shares one server subscription (and TanStack Query shares the lists).
 *
 * @example
 * ```tsx
 * function Bell({ workspaceId }: { workspaceId: string }) {
 *   const { items, unreadCount, markRead, markAllRead, hasMore, fetchMore } = useNotifications(workspaceId);
 *   return (
 *     <Menu badge={unreadCount} onOpen={markAllRead}>
 *       {items.map((n) => <Item key={n.id} bold={!n.readAt} onClick={() => markRead([n.id])}>{n.title}</Item>)}
 *       {hasMore && <button onClick={fetchMore}>More</button>}
 *     </Menu>
 *   );
 * }
 * ```
 */
export function useNotifications(
  workspaceId: string,
  opts: UseNotificationsOptions = {},
): UseNotificationsResult {
  const utils = trpc.useUtils();
  const { client, subscriptions } = usePulseContext();
  const connection = useConnectionState();
  const enabled = opts.enabled ?? true;
  const listInput = { workspaceId, limit: opts.pageSize ?? 20 };
  const [actionError, setActionError] = useState<PulseError | null>(null);

  const inputRef = useRef(listInput);
  inputRef.current = listInput;
  /** Applies one event to the query cache: run once per event by the shared subscription. */
  const applyEvent = (input: typeof listInput, event: NotificationEvent) => {
    switch (event.type) {
      case 'notification': {
        const incoming: Notification = event.notification;
        let known = false;
        utils.notifications.list.setInfiniteData(input, (data) => {
          if (!data) return data;
          known = data.pages.some((page) => page.items.some((n) => n.id === incoming.id));
          if (known) return data;
          const [first, ...rest] = data.pages;
          return { ...data, pages: [{ ...first!, items: [incoming, ...first!.items] }, ...rest] };
        });
        // NOTE: counted only when new to this cache: a replay after a refetch must not count twice.
        if (!known && incoming.readAt === null)
          utils.notifications.unreadCount.setData({ workspaceId: input.workspaceId }, (n) =>
            n === undefined ? n : n + 1,
          );
        return;
      }
      case 'read':
        utils.notifications.list.setInfiniteData(input, (data) =>
          markPages(data, event.all ? 'all' : new Set(event.ids), event.at),
        );
        utils.notifications.unreadCount.setData({ workspaceId: input.workspaceId }, event.unreadCount);
        return;
      case 'sync':
        // The stream's resume point (kept by the client); nothing to show.
        return;
      case 'reset':
        void utils.notifications.list.invalidate({ workspaceId: input.workspaceId });
        void utils.notifications.unreadCount.invalidate({ workspaceId: input.workspaceId });
        return;
      default:
        return assertNever(event);
    }
  };
  const entry = enabled
    ? subscriptions.get(subscriptionKey('notifications.onNotification', listInput), () => {
        const input = listInput;
        return {
          open: (handlers) =>
            client.trpc.notifications.onNotification.subscribe(
              { workspaceId: input.workspaceId },
              { ...handlers, onData: (tracked) => handlers.onData(tracked.data) },
            ).unsubscribe,
          onEvent: (event: NotificationEvent) => applyEvent(input, event),
          // NOTE: a restarted subscription has no resume point: what it feeds is read again.
          onRestart: () => {
            void utils.notifications.list.invalidate({ workspaceId: input.workspaceId });
            void utils.notifications.unreadCount.invalidate({ workspaceId: input.workspaceId });
          },
        };
      })
    : null;
  const shared = useSharedSubscription(entry, () => null);
  // NOTE: the list and count are read only once the subscription is live, so a notification sent
  // in between is either in the first page or arrives as an event (deduplicated by id), never lost.
  const live = enabled && shared.started;
  const list = trpc.notifications.list.useInfiniteQuery(listInput, {
    getNextPageParam: (page) => page.nextCursor ?? undefined,
    enabled: live,
  });
  const unread = trpc.notifications.unreadCount.useQuery({ workspaceId }, { enabled: live });

  const markReadMutation = trpc.notifications.markRead.useMutation();
  const markAllReadMutation = trpc.notifications.markAllRead.useMutation();
  const markRead = useCallback(
    (ids: string[]) => {
      if (ids.length === 0) return;
      const input = inputRef.current;
      utils.notifications.list.setInfiniteData(input, (data) =>
        markPages(data, new Set(ids), new Date().toISOString()),
      );
      markReadMutation.mutate(
        { workspaceId: input.workspaceId, ids },
        {
          onSuccess: (result) => {
            setActionError(null);
            utils.notifications.unreadCount.setData({ workspaceId: input.workspaceId }, result.unreadCount);
          },
          onError: (error) => {
            setActionError(toPulseError(error));
            void utils.notifications.list.invalidate({ workspaceId: input.workspaceId });
          },
        },
      );
    },
    [utils, markReadMutation.mutate],
  );
  const markAllRead = useCallback(() => {
    const input = inputRef.current;
    utils.notifications.list.setInfiniteData(input, (data) =>
      markPages(data, 'all', new Date().toISOString()),
    );
    markAllReadMutation.mutate(
      { workspaceId: input.workspaceId },
      {
        onSuccess: (result) => {
          setActionError(null);
          utils.notifications.unreadCount.setData({ workspaceId: input.workspaceId }, result.unreadCount);
        },
        onError: (error) => {
          setActionError(toPulseError(error));
          void utils.notifications.list.invalidate({ workspaceId: input.workspaceId });
        },
      },
    );
  }, [utils, markAllReadMutation.mutate]);

  const pages = list.data?.pages;
  const items = useMemo(() => {
    const seen = new Set<string>();
    const out: Notification[] = [];
    for (const page of pages ?? [])
      for (const n of page.items) {
        if (seen.has(n.id)) continue;
        seen.add(n.id);
        out.push(n);
      }
    return out;
  }, [pages]);
  const { fetchNextPage } = list;
  const fetchMore = useCallback(() => void fetchNextPage(), [fetchNextPage]);

  const queryError = list.error ?? unread.error;
  const subscriptionError = useSubscriptionRecovery(shared.subscription, connection);
  const { status, error } = liveState({
    connection,
    subscriptionError: subscriptionError ?? queryError,
    hasData: list.data !== undefined && unread.data !== undefined,
    extraError: actionError,
  });
  return {
    items,
    fetchMore,
    hasMore: list.hasNextPage,
    unreadCount: unread.data ?? 0,
    markRead,
    markAllRead,
    status,
    error,
  };
}

function assertNever(value: never): never {
  throw new Error(`Unexpected event: ${JSON.stringify(value)}`);
}
