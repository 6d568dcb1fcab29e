import { useNotifications } from '@pulse/react';
import type { NotificationType } from '@pulse/server/schema';
import { useState } from 'react';
import { Icon } from '../components/Icon.js';
import { NotificationRow } from '../components/NotificationRow.js';
import { notificationKinds, useNotificationCenter, useOpenNotification } from '../notification-center.js';
import { href, useRoute } from '../router.js';
import { useWorkspace } from '../workspace.js';
import { PreferencesPage } from './PreferencesPage.js';

type Tab = 'all' | 'unread' | 'archived';

const tabs: Array<{ tab: Tab; label: string }> = [
  { tab: 'all', label: 'All' },
  { tab: 'unread', label: 'Unread' },
  { tab: 'archived', label: 'Archived' },
];

/**
 * The notification centre: All (not archived) / Unread / Archived tabs, each a server-side filter,
 * optionally of one kind; archive per item (unarchive in Archived), mark all read, older pages.
 * `#/notifications/preferences` is the preferences page.
 */
export function NotificationsPage() {
  const route = useRoute();
  if (route.param === 'preferences') return <PreferencesPage />;
  return <NotificationList />;
}

function NotificationList() {
  const { workspaceId } = useWorkspace();
  const { unreadCount, markAllRead } = useNotificationCenter();
  const [tab, setTab] = useState<Tab>('all');
  const [kind, setKind] = useState<NotificationType | null>(null);
  // NOTE: one list per tab and kind (its own query), all fed by the shell's one feed subscription.
  const list = useNotifications(workspaceId, {
    ...(tab === 'all' ? {} : { status: tab }),
    ...(kind ? { kinds: [kind] } : {}),
  });
  const open = useOpenNotification();
  const kinds = Object.entries(notificationKinds) as Array<
    [NotificationType, (typeof notificationKinds)[NotificationType]]
  >;

  return (
    <section className="panel">
      <div className="panel-head">
        <h2>Notifications</h2>
        <span className="sub">
          {unreadCount} unread · {list.status}
        </span>
        <div className="right">
          <a className="btn small" href={href('notifications', 'preferences')} data-testid="preferences-link">
            <Icon name="bell" size={15} /> Preferences
          </a>
          <button
            type="button"
            className="btn small"
            data-testid="mark-all-read"
            disabled={unreadCount === 0}
            onClick={() => markAllRead()}
          >
            <Icon name="checks" size={15} /> Mark all read
          </button>
        </div>
      </div>
      <div className="inbox-filter" style={{ position: 'static', flexWrap: 'wrap', marginTop: 10 }}>
        {tabs.map(({ tab: t, label }) => (
          <button
            key={t}
            type="button"
            className={`chip ${tab === t ? 'accent' : ''}`}
            data-testid={`notifications-tab-${t}`}
            aria-pressed={tab === t}
            onClick={() => setTab(t)}
          >
            {t === 'unread' ? `${label} (${unreadCount})` : label}
          </button>
        ))}
        <span style={{ width: 12 }} />
        {kinds.map(([type, k]) => (
          <button
            key={type}
            type="button"
            className={`chip ${kind === type ? 'accent' : ''}`}
            aria-pressed={kind === type}
            onClick={() => setKind((current) => (current === type ? null : type))}
          >
            <Icon name={k.icon} size={12} /> {k.label}
          </button>
        ))}
      </div>
      {list.error ? (
        <div className="error-box" style={{ margin: 16 }}>
          {list.error.message}
        </div>
      ) : null}
      <div data-testid="notification-list" data-tab={tab} data-status={list.status}>
        {list.items.length === 0 ? <div className="empty">Nothing here.</div> : null}
        {list.items.map((n) => (
          <NotificationRow
            key={n.id}
            notification={n}
            onOpen={open}
            {...(tab === 'archived'
              ? { onUnarchive: (x) => list.unarchive([x.id]) }
              : { onArchive: (x) => list.archive([x.id]) })}
          />
        ))}
      </div>
      {list.hasMore ? (
        <div style={{ padding: 14, textAlign: 'center' }}>
          <button type="button" className="btn small" onClick={() => list.fetchMore()}>
            Load older
          </button>
        </div>
      ) : null}
    </section>
  );
}
