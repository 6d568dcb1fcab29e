import { useEffect, useRef } from 'react';
import { type NotificationItem, notificationKinds, useNotificationCenter } from '../notification-center.js';
import { navigate } from '../router.js';
import { Icon } from './Icon.js';

function Toast({ notification, onClose }: { notification: NotificationItem; onClose: (id: string) => void }) {
  const crisis = notification.type === 'crisis';
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    if (crisis) return;
    const timer = setTimeout(() => close.current(notification.id), 6_000);
    return () => clearTimeout(timer);
  }, [crisis, notification.id]);
  const kind = notificationKinds[notification.type];
  return (
    <div className={`toast ${crisis ? 'crisis' : ''}`} data-testid="toast">
      <span
        className={`kind ${notification.type}`}
        style={{ width: 30, height: 30, borderRadius: 9, display: 'grid', placeItems: 'center' }}
      >
        <Icon name={kind.icon} size={16} />
      </span>
      <div style={{ flex: 1, minWidth: 0 }}>
        <strong style={{ display: 'block' }}>{notification.title}</strong>
        {notification.body ? <span className="muted">{notification.body}</span> : null}
      </div>
      <button
        type="button"
        className="icon-btn"
        onClick={() => onClose(notification.id)}
        aria-label="Dismiss"
      >
        <Icon name="x" size={15} />
      </button>
    </div>
  );
}

/** New notifications pop up bottom right; crisis alerts stay until dismissed. */
export function Toasts() {
  const { fresh, dismiss } = useNotificationCenter();
  return (
    <div className="toasts">
      {fresh.map((n) => (
        <Toast key={n.id} notification={n} onClose={dismiss} />
      ))}
    </div>
  );
}

/** The newest unread crisis alert, on every screen until it is acknowledged. */
export function CrisisBanner() {
  const { items, markRead } = useNotificationCenter();
  const crisis = items.find((n) => n.type === 'crisis' && !n.readAt);
  if (crisis?.type !== 'crisis') return null;
  return (
    <div className="crisis-banner" data-testid="crisis-banner">
      <Icon name="siren" size={26} />
      <div>
        <strong>
          Crisis: {crisis.title} <span className="chip red">{crisis.data.severity}</span>
        </strong>
        <p>
          {crisis.data.volume.toLocaleString()} mentions about “{crisis.data.topic}”
          {crisis.data.sentiment !== undefined ? ` · sentiment ${crisis.data.sentiment.toFixed(2)}` : ''}
        </p>
      </div>
      <button type="button" className="btn small" onClick={() => navigate('notifications')}>
        Details
      </button>
      <button type="button" className="btn small" onClick={() => markRead([crisis.id])}>
        Acknowledge
      </button>
    </div>
  );
}
