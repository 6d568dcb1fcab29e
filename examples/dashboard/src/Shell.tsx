import { useConnectionStatus, usePresencePage } from '@pulse/react';
import { useEffect } from 'react';
import { Avatar } from './components/Avatar.js';
import { Bell } from './components/Bell.js';
import { CrisisBanner, Toasts } from './components/Toasts.js';
import { Icon, type IconName } from './components/Icon.js';
import { NotificationCenter, useNotificationCenter } from './notification-center.js';
import { PresenceProvider, useTeamPresence } from './presence-context.js';
import { AdminPage } from './pages/AdminPage.js';
import { DashboardPage } from './pages/DashboardPage.js';
import { InboxPage } from './pages/InboxPage.js';
import { NotificationsPage } from './pages/NotificationsPage.js';
import { TeamPage } from './pages/TeamPage.js';
import { href, type Page, routePath, useRoute } from './router.js';
import { type DemoUser, invalidateDemoTokens } from './session.js';
import { WorkspaceContext } from './workspace.js';

const titles: Record<Page, string> = {
  dashboard: 'Live dashboard',
  inbox: 'Inbox',
  team: 'Team',
  notifications: 'Notifications',
  admin: 'Admin',
};

const navItems: Array<{ page: Page; label: string; icon: IconName; adminOnly?: boolean }> = [
  { page: 'dashboard', label: 'Dashboard', icon: 'dashboard' },
  { page: 'inbox', label: 'Inbox', icon: 'inbox' },
  { page: 'team', label: 'Team', icon: 'team' },
  { page: 'notifications', label: 'Notifications', icon: 'bell' },
  { page: 'admin', label: 'Admin', icon: 'admin', adminOnly: true },
];

/** Sidebar, top bar and the current page, inside one workspace. */
export function Shell(props: {
  user: DemoUser;
  members: DemoUser[];
  workspaceId: string;
  onSwitchWorkspace: (workspaceId: string) => void;
  onSignOut: () => void;
}) {
  const { user, workspaceId } = props;
  const role = user.workspaces[workspaceId]!;
  const members = props.members.filter((m) => workspaceId in m.workspaces);
  return (
    <WorkspaceContext.Provider value={{ workspaceId, user, role, members }}>
      <PresenceProvider workspaceId={workspaceId}>
        <NotificationCenter key={workspaceId} workspaceId={workspaceId}>
          <Frame {...props} />
        </NotificationCenter>
      </PresenceProvider>
    </WorkspaceContext.Provider>
  );
}

function Frame({
  user,
  workspaceId,
  onSwitchWorkspace,
  onSignOut,
}: {
  user: DemoUser;
  members: DemoUser[];
  workspaceId: string;
  onSwitchWorkspace: (workspaceId: string) => void;
  onSignOut: () => void;
}) {
  const route = useRoute();
  const role = user.workspaces[workspaceId]!;
  const connection = useConnectionStatus();
  const { me } = useTeamPresence();
  const { unreadCount } = useNotificationCenter();
  // The user's own presence follows the route: teammates see which screen they are on.
  usePresencePage(workspaceId, routePath(route));
  const page = route.page === 'admin' && role !== 'admin' ? 'dashboard' : route.page;

  // A restarted demo server signs with a new secret: drop the cached tokens so the reconnect gets fresh ones.
  useEffect(() => {
    if (connection.error?.context.type === 'AUTH') invalidateDemoTokens();
  }, [connection.error]);

  useEffect(() => {
    document.title = `${unreadCount > 0 ? `(${unreadCount}) ` : ''}${titles[page]} · ${workspaceId} · Pulse`;
  }, [unreadCount, page, workspaceId]);

  return (
    <div className="shell" data-workspace={workspaceId} data-user={user.sub}>
      <aside className="sidebar">
        <div className="brand">
          <span className="brand-mark">
            <Icon name="activity" size={18} />
          </span>
          <div>
            Pulse
            <small>Realtime console</small>
          </div>
        </div>
        <div className="ws-switch">
          <label htmlFor="workspace">Workspace</label>
          <select
            id="workspace"
            data-testid="workspace-switch"
            value={workspaceId}
            onChange={(e) => onSwitchWorkspace(e.target.value)}
          >
            {Object.entries(user.workspaces).map(([id, r]) => (
              <option key={id} value={id}>
                {id} ({r})
              </option>
            ))}
          </select>
        </div>
        <nav className="nav">
          {navItems
            .filter((item) => !item.adminOnly || role === 'admin')
            .map((item) => (
              <a
                key={item.page}
                href={href(item.page)}
                className={page === item.page ? 'active' : ''}
                data-testid={`nav-${item.page}`}
              >
                <Icon name={item.icon} />
                {item.label}
                {item.page === 'notifications' && unreadCount > 0 ? (
                  <span className="count">{unreadCount}</span>
                ) : null}
              </a>
            ))}
        </nav>
        <div className="sidebar-foot">
          <Avatar id={user.sub} name={user.name} size={34} status={me?.status ?? null} />
          <div className="who">
            <strong>{user.name}</strong>
            <span>
              {role} · {me?.status ?? 'connecting'}
            </span>
          </div>
          <button type="button" className="icon-btn" title="Sign out" onClick={onSignOut}>
            <Icon name="logout" />
          </button>
        </div>
      </aside>
      <div className="main">
        <header className="topbar">
          <h1>{titles[page]}</h1>
          <span className="spacer" />
          <span
            className={`conn ${connection.status}`}
            data-testid="connection"
            data-role={connection.role}
            title={
              connection.error?.message ??
              (connection.role === 'follower'
                ? 'Shares the socket of another tab'
                : connection.role === 'leader'
                  ? 'Holds the socket this browser’s tabs share'
                  : undefined)
            }
          >
            {connection.status}
            {connection.role !== 'solo' ? (
              <small className="conn-role" data-testid="connection-role">
                {' · '}
                {connection.role}
              </small>
            ) : null}
          </span>
          <Bell />
        </header>
        <main className={`content ${page === 'inbox' ? 'fill' : ''}`}>
          <CrisisBanner />
          {page === 'dashboard' ? <DashboardPage /> : null}
          {page === 'inbox' ? <InboxPage conversationId={route.param} /> : null}
          {page === 'team' ? <TeamPage /> : null}
          {page === 'notifications' ? <NotificationsPage /> : null}
          {page === 'admin' ? <AdminPage /> : null}
        </main>
      </div>
      <Toasts />
    </div>
  );
}
