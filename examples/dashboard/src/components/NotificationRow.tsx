import { type NotificationItem, notificationKinds } from '../notification-center.js';
import { timeAgo } from '../time.js';
import { Icon } from './Icon.js';

/** One notification: kind icon, title, body, time; unread dot; crisis alerts stand out. */
export function NotificationRow({
  notification,
  onOpen,
}: {
  notification: NotificationItem;
  onOpen?: (notification: NotificationItem) => void;
}) {
  const kind = notificationKinds[notification.type];
  const unread = !notification.readAt;
  return (
    <div
      className={`notif ${unread ? 'unread' : ''} ${notification.type === 'crisis' ? 'crisis' : ''}`}
      data-testid="notification"
      data-type={notification.type}
      data-unread={unread}
      onClick={() => onOpen?.(notification)}
      onKeyDown={(e) => e.key === 'Enter' && onOpen?.(notification)}
      role="button"
      tabIndex={0}
    >
      <span className={`kind ${notification.type}`} title={kind.label}>
        <Icon name={kind.icon} size={17} />
      </span>
      <div className="text">
        <strong>{notification.title}</strong>
        {notification.body ? <p>{notification.body}</p> : null}
        <time dateTime={notification.createdAt}>
          {kind.label} · {timeAgo(notification.createdAt)}
          {notification.userId === null ? ' · everyone' : ''}
          {notification.priority === 'urgent' || notification.priority === 'high'
            ? ` · ${notification.priority}`
            : ''}
        </time>
      </div>
    </div>
  );
}
