import type { UserPresence } from '@pulse/server/schema';
import { Avatar } from '../components/Avatar.js';
import { Icon } from '../components/Icon.js';
import { useTeamPresence } from '../presence-context.js';
import { timeAgo } from '../time.js';
import { useWorkspace } from '../workspace.js';

const pageNames: Record<string, string> = {
  dashboard: 'Dashboard',
  inbox: 'Inbox',
  team: 'Team',
  notifications: 'Notifications',
  admin: 'Admin',
};

/** "/inbox/c_12" -> "Inbox › c_12" */
export function describePage(page: string | null): string {
  if (!page) return '—';
  const [first, ...rest] = page.replace(/^\//, '').split('/');
  const name = pageNames[first ?? ''] ?? first ?? page;
  return rest.length > 0 ? `${name} › ${rest.join('/')}` : name;
}

function describeActivity(user: UserPresence): string {
  if (!user.activity) return user.status === 'away' ? 'Idle' : 'Active';
  const verb = { viewing: 'Viewing', editing: 'Editing', commenting: 'Replying to' }[user.activity.kind];
  return user.activity.target ? `${verb} ${user.activity.target}` : verb;
}

/** Who is online or away, where, doing what; members who are offline below. */
export function TeamPage() {
  const { workspaceId, members, user: me } = useWorkspace();
  const { users, status } = useTeamPresence();
  const online = users.filter((u) => u.status !== 'offline');
  const offline = members.filter((m) => !online.some((u) => u.userId === m.sub));
  const away = online.filter((u) => u.status === 'away').length;

  return (
    <>
      <div className="grid cards">
        <div className="panel stat">
          <span className="label">
            <Icon name="users" size={15} /> Online now
          </span>
          <span className="value" data-testid="online-count">
            {online.length - away}
          </span>
          <span className="meta">{status === 'live' ? 'live' : status}</span>
        </div>
        <div className="panel stat">
          <span className="label">
            <Icon name="clock" size={15} /> Away
          </span>
          <span className="value">{away}</span>
          <span className="meta">idle or tab hidden</span>
        </div>
        <div className="panel stat">
          <span className="label">
            <Icon name="team" size={15} /> Members
          </span>
          <span className="value">{members.length}</span>
          <span className="meta">in {workspaceId}</span>
        </div>
      </div>
      <section className="panel">
        <div className="panel-head">
          <h2>Team presence</h2>
          <span className="sub">merged across tabs and devices</span>
        </div>
        <div className="people" data-testid="presence-list" style={{ marginTop: 12 }}>
          {online.map((u) => (
            <div
              key={u.userId}
              className="person"
              data-testid="presence-user"
              data-user={u.userId}
              data-status={u.status}
            >
              <Avatar id={u.userId} name={u.name} status={u.status} size={40} />
              <div className="info">
                <strong>
                  {u.name} {u.userId === me.sub ? <span className="chip">you</span> : null}
                </strong>
                <span>{describeActivity(u)}</span>
              </div>
              <div className="where">
                <div>
                  <code>{describePage(u.page)}</code>
                </div>
                <div style={{ marginTop: 4 }}>
                  <span className={`chip ${u.status === 'online' ? 'green' : 'amber'}`}>{u.status}</span>{' '}
                  since {timeAgo(u.since)}
                </div>
              </div>
            </div>
          ))}
          {offline.map((m) => (
            <div key={m.sub} className="person" style={{ opacity: 0.55 }} data-status="offline">
              <Avatar id={m.sub} name={m.name} status="offline" size={40} />
              <div className="info">
                <strong>{m.name}</strong>
                <span>Offline</span>
              </div>
              <div className="where">
                <span className="chip">{m.workspaces[workspaceId]}</span>
              </div>
            </div>
          ))}
        </div>
      </section>
    </>
  );
}
