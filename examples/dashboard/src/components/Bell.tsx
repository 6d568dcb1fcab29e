import { useEffect, useRef, useState } from 'react';
import { notificationTarget, useNotificationCenter, useOpenNotification } from '../notification-center.js';
import { navigate } from '../router.js';
import { Icon } from './Icon.js';
import { NotificationRow } from './NotificationRow.js';

/** The bell: unseen badge and a popover with the latest notifications; opening it marks them seen. */
export function Bell() {
  const { items, unseenCount, unreadCount, markSeen, markAllRead, archive } = useNotificationCenter();
  const open = useOpenNotification();
  const [isOpen, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!isOpen) return;
    const close = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setOpen(false);
    };
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', onKey);
    };
  }, [isOpen]);

  return (
    <div className="bell" ref={root}>
      <button
        type="button"
        className="icon-btn"
        data-testid="bell"
        aria-label={`Notifications, ${unseenCount} new, ${unreadCount} unread`}
        onClick={() => {
          // NOTE: opening marks seen everything up to the newest on screen (the badge goes to 0);
          // they stay unread until opened. One arriving meanwhile stays unseen.
          if (!isOpen && unseenCount > 0) markSeen();
          setOpen(!isOpen);
        }}
      >
        <Icon name="bell" size={21} />
        {unseenCount > 0 ? (
          <span className="badge" data-testid="bell-badge">
            {unseenCount > 99 ? '99+' : unseenCount}
          </span>
        ) : null}
      </button>
      {isOpen ? (
        <div className="popover" data-testid="bell-popover">
          <div className="popover-head">
            <h3>Notifications</h3>
            <button
              type="button"
              className="btn link small"
              disabled={unreadCount === 0}
              onClick={() => markAllRead()}
            >
              Mark all read
            </button>
          </div>
          <div className="popover-body">
            {items.length === 0 ? <div className="empty">You're all caught up.</div> : null}
            {items.slice(0, 12).map((n) => (
              <NotificationRow
                key={n.id}
                notification={n}
                onArchive={(x) => archive([x.id])}
                onOpen={(x) => {
                  open(x);
                  if (notificationTarget(x)) setOpen(false);
                }}
              />
            ))}
          </div>
          <a
            className="popover-foot"
            href="#/notifications"
            onClick={(e) => {
              e.preventDefault();
              setOpen(false);
              navigate('notifications');
            }}
          >
            View all
          </a>
        </div>
      ) : null}
    </div>
  );
}
