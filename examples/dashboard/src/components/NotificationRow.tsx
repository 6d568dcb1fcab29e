import { type NotificationItem, notificationKinds } from '../notification-center.js';
import { timeAgo } from '../time.js';
import { Icon } from './Icon.js';

/** One notification: kind icon, title, body, time; unread dot; crisis alerts stand out; archive / unarchive. */
export function NotificationRow({
  notification,
  onOpen,
  onArchive,
  onUnarchive,
}: {
  notification: NotificationItem;
  onOpen?: (notification: NotificationItem) => void;
  onArchive?: (notification: NotificationItem) => void;
  onUnarchive?: (notification: NotificationItem) => void;
}) {
  const kind = notificationKinds[notification.type];
  const unread = !notification.readAt;
  const action = onUnarchive
    ? { label: 'Unarchive', testId: 'notification-unarchive', run: onUnarchive }
    : onArchive
      ? { label: 'Archive', testId: 'notification-archive', run: onArchive }
      : null;
  return (
    <div
      className={`notif ${unread ? 'unread' : ''} ${notification.type === 'crisis' ? 'crisis' : ''}`}
      data-testid="notification"
      data-type={notification.type}
      data-unread={unread}
      data-seen={Boolean(notification.seenAt)}
      data-archived={Boolean(notification.archivedAt)}
      data-id={notification.id}
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
      {action ? (
        <button
          type="button"
          className="btn link small notif-action"
          data-testid={action.testId}
          title={action.label}
          onClick={(e) => {
            e.stopPropagation();
            action.run(notification);
          }}
          onKeyDown={(e) => e.stopPropagation()}
        >
          {action.label}
        </button>
      ) : null}
    </div>
  );
}
