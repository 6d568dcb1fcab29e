import { PulseProvider } from '@pulse/react';
import { useMemo } from 'react';
import { Shell } from './Shell.js';
import { SignIn } from './pages/SignIn.js';
import { demoTokenFor, pulseUrl, useDemoUsers, useSession } from './session.js';

// NOTE: `?shareTabs=off` gives every tab its own socket (the browser tests compare both modes).
const shareConnection = new URLSearchParams(window.location.search).get('shareTabs') !== 'off';

/** Signed out: the demo sign-in. Signed in: one PulseProvider (one socket) per user. */
export function App() {
  const { session, signIn, signOut, switchWorkspace } = useSession();
  const demo = useDemoUsers();
  const user = session ? demo.users.find((u) => u.sub === session.userId) : undefined;
  const userId = session?.userId;
  const token = useMemo(() => (userId ? demoTokenFor(userId) : null), [userId]);

  if (!session || !token) return <SignIn demo={demo} onSignIn={signIn} />;
  if (demo.loading) return <div className="signin" />;
  if (!user || !(session.workspaceId in user.workspaces)) {
    // The server restarted with another cast, or the stored session is stale: sign in again.
    return <SignIn demo={demo} onSignIn={signIn} />;
  }
  return (
    <PulseProvider
      key={session.userId}
      url={pulseUrl}
      token={token}
      idleMs={60_000}
      clientOptions={{ shareConnection }}
    >
      <Shell
        user={user}
        members={demo.users}
        workspaceId={session.workspaceId}
        onSwitchWorkspace={switchWorkspace}
        onSignOut={signOut}
      />
    </PulseProvider>
  );
}
