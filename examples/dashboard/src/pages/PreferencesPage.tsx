import { useNotificationPreferences } from '@pulse/react';
import type { NotificationType } from '@pulse/server/schema';
import { useState } from 'react';
import { Icon } from '../components/Icon.js';
import { notificationKinds } from '../notification-center.js';
import { href } from '../router.js';
import { useWorkspace } from '../workspace.js';

/**
 * The viewer's in-app notification preferences, per kind (live: a change in another tab shows up
 * here). Crisis alerts are shown locked when the workspace does not let members mute them.
 */
export function PreferencesPage() {
  const { workspaceId } = useWorkspace();
  const { preferences, set, status, error } = useNotificationPreferences(workspaceId);
  const kinds = Object.entries(notificationKinds) as Array<
    [NotificationType, (typeof notificationKinds)[NotificationType]]
  >;
  const crisisLocked = preferences ? !preferences.workspace.crisisMutable : true;
  // NOTE: a toggle shows its new position at once; the server's answer (or its refusal) replaces it.
  const [pending, setPending] = useState<Partial<Record<NotificationType, boolean>>>({});
  const toggle = (type: NotificationType, on: boolean | null) => {
    if (on !== null) setPending((p) => ({ ...p, [type]: on }));
    void set({ kinds: { [type]: on } })
      .catch(() => {})
      .finally(() =>
        setPending((p) => {
          const { [type]: _, ...rest } = p;
          return rest;
        }),
      );
  };

  return (
    <section className="panel" data-testid="preferences" data-status={status}>
      <div className="panel-head">
        <h2>Notification preferences</h2>
        <span className="sub">
          In-app, for {workspaceId} · {status}
        </span>
        <div className="right">
          <a className="btn small" href={href('notifications')}>
            <Icon name="bell" size={15} /> Back to notifications
          </a>
        </div>
      </div>
      {error ? (
        <div className="error-box" style={{ margin: 16 }} data-testid="preferences-error">
          {error.message}
        </div>
      ) : null}
      {preferences ? (
        <ul className="prefs">
          {kinds.map(([type, kind]) => {
            const locked = type === 'crisis' && crisisLocked;
            const own = preferences.user.kinds[type];
            const byDefault = preferences.workspace.kinds[type];
            return (
              <li key={type}>
                <label>
                  <input
                    type="checkbox"
                    data-testid={`pref-${type}`}
                    checked={pending[type] ?? preferences.effective[type]}
                    disabled={locked}
                    onChange={(e) => toggle(type, e.target.checked)}
                  />
                  <span className={`kind ${type}`}>
                    <Icon name={kind.icon} size={15} />
                  </span>
                  {kind.label}
                </label>
                {locked ? (
                  <span className="locked" data-testid="pref-crisis-locked">
                    Always on: set by your workspace
                  </span>
                ) : own !== undefined ? (
                  <button
                    type="button"
                    className="btn link small"
                    data-testid={`pref-reset-${type}`}
                    onClick={() => toggle(type, null)}
                  >
                    Use workspace default ({byDefault === false ? 'off' : 'on'})
                  </button>
                ) : (
                  <span className="locked">Workspace default</span>
                )}
              </li>
            );
          })}
        </ul>
      ) : (
        <div className="empty">Loading…</div>
      )}
    </section>
  );
}
