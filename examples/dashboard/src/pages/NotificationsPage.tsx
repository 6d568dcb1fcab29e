import type { NotificationType } from '@pulse/server/schema';
import { useState } from 'react';
import { Icon } from '../components/Icon.js';
import { NotificationRow } from '../components/NotificationRow.js';
import { notificationKinds, useNotificationCenter, useOpenNotification } from '../notification-center.js';

type Filter = 'all' | 'unread' | NotificationType;

/** Every notification, filterable by kind, with mark read / mark all read and older pages. */
export function NotificationsPage() {
  const { items, unreadCount, markAllRead, hasMore, fetchMore, status, error } = useNotificationCenter();
  const [filter, setFilter] = useState<Filter>('all');
  const open = useOpenNotification();
  const shown = items.filter((n) =>
    filter === 'all' ? true : filter === 'unread' ? !n.readAt : n.type === filter,
  );
  const kinds = Object.entries(notificationKinds) as Array<
    [NotificationType, (typeof notificationKinds)[NotificationType]]
  >;

  return (
    <section className="panel">
      <div className="panel-head">
        <h2>All notifications</h2>
        <span className="sub">
          {unreadCount} unread · {status}
        </span>
        <div className="right">
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
        {(['all', 'unread'] as const).map((f) => (
          <button
            key={f}
            type="button"
            className={`chip ${filter === f ? 'accent' : ''}`}
            onClick={() => setFilter(f)}
          >
            {f === 'all' ? 'All' : `Unread (${unreadCount})`}
          </button>
        ))}
        {kinds.map(([type, kind]) => (
          <button
            key={type}
            type="button"
            className={`chip ${filter === type ? 'accent' : ''}`}
            onClick={() => setFilter(type)}
          >
            <Icon name={kind.icon} size={12} /> {kind.label}
          </button>
        ))}
      </div>
      {error ? (
        <div className="error-box" style={{ margin: 16 }}>
          {error.message}
        </div>
      ) : null}
      <div data-testid="notification-list">
        {shown.length === 0 ? <div className="empty">Nothing here.</div> : null}
        {shown.map((n) => (
          <NotificationRow key={n.id} notification={n} onOpen={open} />
        ))}
      </div>
      {hasMore ? (
        <div style={{ padding: 14, textAlign: 'center' }}>
          <button type="button" className="btn small" onClick={() => fetchMore()}>
            Load older
          </button>
        </div>
      ) : null}
    </section>
  );
}
