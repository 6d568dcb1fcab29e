import { useNotifications } from '@pulse/react';
import type { NotificationType } from '@pulse/server/schema';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { IconName } from './components/Icon.js';
import { navigate } from './router.js';

type NotificationsState = ReturnType<typeof useNotifications>;
export type NotificationItem = NotificationsState['items'][number];

interface NotificationCenterValue extends NotificationsState {
  /** Notifications that arrived live since the app opened (newest first), for toasts. */
  fresh: NotificationItem[];
  dismiss: (id: string) => void;
}

const Context = createContext<NotificationCenterValue | null>(null);

/** Display of each notification kind: label and icon. */
export const notificationKinds: Record<NotificationType, { label: string; icon: IconName }> = {
  mention: { label: 'Mention', icon: 'at' },
  message: { label: 'Message', icon: 'message' },
  approval: { label: 'Approval', icon: 'approval' },
  alert: { label: 'Alert', icon: 'alert' },
  post_published: { label: 'Published', icon: 'published' },
  post_failed: { label: 'Post failed', icon: 'failed' },
  crisis: { label: 'Crisis', icon: 'siren' },
  review: { label: 'Review', icon: 'star' },
};

/** One live notifications subscription for the whole shell (bell, page, toasts, crisis banner). */
export function NotificationCenter({ workspaceId, children }: { workspaceId: string; children: ReactNode }) {
  const state = useNotifications(workspaceId);
  const seen = useRef<Set<string> | null>(null);
  const [fresh, setFresh] = useState<NotificationItem[]>([]);

  useEffect(() => {
    if (state.status !== 'live' && seen.current === null) return;
    if (seen.current === null) {
      // NOTE: what the first page brought is history, not news: only later arrivals become toasts.
      seen.current = new Set(state.items.map((n) => n.id));
      return;
    }
    const arrived = state.items.filter((n) => !seen.current!.has(n.id));
    if (arrived.length === 0) return;
    for (const n of arrived) seen.current.add(n.id);
    // Low-priority news (a post went live) only moves the badge; everything else pops up.
    setFresh((prev) => [...arrived.filter((n) => !n.readAt && n.priority !== 'low'), ...prev].slice(0, 3));
  }, [state.items, state.status]);

  const dismiss = useCallback((id: string) => setFresh((prev) => prev.filter((n) => n.id !== id)), []);
  return <Context.Provider value={{ ...state, fresh, dismiss }}>{children}</Context.Provider>;
}

export function useNotificationCenter(): NotificationCenterValue {
  const value = useContext(Context);
  if (!value) throw new Error('useNotificationCenter must be used inside <NotificationCenter>');
  return value;
}

/** Where a notification leads: its conversation when it has one. */
export function notificationTarget(n: NotificationItem): string | null {
  if (n.type === 'message') return n.data.conversationId;
  if (n.type === 'alert') return n.data.conversationId ?? null;
  return null;
}

/** Opening a notification marks it read and follows it to its conversation, if any. */
export function useOpenNotification(): (n: NotificationItem) => void {
  const { markRead } = useNotificationCenter();
  return useCallback(
    (n: NotificationItem) => {
      if (!n.readAt) markRead([n.id]);
      const conversationId = notificationTarget(n);
      if (conversationId) navigate('inbox', conversationId);
    },
    [markRead],
  );
}
