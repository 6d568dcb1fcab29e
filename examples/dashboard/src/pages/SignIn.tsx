import { Avatar } from '../components/Avatar.js';
import { Icon } from '../components/Icon.js';
import type { DemoUser, Session } from '../session.js';

/** Pick a demo user (and a workspace when they have several). */
export function SignIn({
  demo,
  onSignIn,
}: {
  demo: { users: DemoUser[]; error: string | null; loading: boolean };
  onSignIn: (session: Session) => void;
}) {
  return (
    <div className="signin">
      <div className="panel signin-card">
        <div className="brand" style={{ color: 'var(--text)', padding: 0 }}>
          <span className="brand-mark">
            <Icon name="activity" size={18} />
          </span>
          Pulse
        </div>
        <h1>Sign in to the admin console</h1>
        <p>Pick a demo user. Open a second window as someone else to watch everything move live.</p>
        {demo.error ? <div className="error-box">{demo.error}</div> : null}
        {demo.loading ? <div className="empty">Loading demo users…</div> : null}
        <div className="user-pick">
          {demo.users.map((user) => {
            const workspaces = Object.entries(user.workspaces);
            return (
              <div key={user.sub} className="user-option" data-user={user.sub}>
                <Avatar id={user.sub} name={user.name} size={40} />
                <div className="info">
                  <strong>{user.name}</strong>
                  <span className="muted">@{user.sub}</span>
                </div>
                <div className="ws">
                  {workspaces.map(([workspaceId, role]) => (
                    <button
                      key={workspaceId}
                      type="button"
                      className="btn small"
                      data-testid={`signin-${user.sub}-${workspaceId}`}
                      onClick={() => onSignIn({ userId: user.sub, workspaceId })}
                    >
                      {workspaceId}
                      <span className={`chip ${role === 'admin' ? 'accent' : ''}`}>{role}</span>
                    </button>
                  ))}
                </div>
              </div>
            );
          })}
        </div>
        <div className="demo-note">
          <Icon name="admin" size={15} />
          Demo mode: the server minted these tokens with a random secret. Never run demo mode in production.
        </div>
      </div>
    </div>
  );
}
