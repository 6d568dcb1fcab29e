import { usePresence, type UsePresenceResult } from '@pulse/react';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';

const Context = createContext<UsePresenceResult | null>(null);

/** One presence subscription for the whole shell: the team list, avatars and the viewer's own status. */
export function PresenceProvider({ workspaceId, children }: { workspaceId: string; children: ReactNode }) {
  const presence = usePresence(workspaceId);
  return <Context.Provider value={presence}>{children}</Context.Provider>;
}

export function useTeamPresence(): UsePresenceResult {
  const value = useContext(Context);
  if (!value) throw new Error('useTeamPresence must be used inside <PresenceProvider>');
  return value;
}

/** The current time, re-rendering every `everyMs` (SLA countdowns, "3 min ago"). */
export function useNow(everyMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
