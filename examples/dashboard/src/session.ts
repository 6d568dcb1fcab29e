import type { DemoToken, DemoTokensResponse } from '@pulse/server/demo';
import { useCallback, useEffect, useState } from 'react';

/** The Pulse node this app talks to: the page's own origin (served by Pulse) unless configured. */
export const pulseUrl: string = import.meta.env.VITE_PULSE_URL ?? window.location.origin;

const storageKey = 'pulse-demo-session';

export interface Session {
  userId: string;
  workspaceId: string;
}

export type DemoUser = DemoToken;

let tokensCache: { at: number; promise: Promise<DemoTokensResponse> } | null = null;

/** Demo users with tokens from the server (demo mode only); cached briefly, refetched after a restart. */
export function fetchDemoTokens(force = false): Promise<DemoTokensResponse> {
  if (!force && tokensCache && Date.now() - tokensCache.at < 30_000) return tokensCache.promise;
  const promise = fetch(`${pulseUrl}/demo/tokens`, { cache: 'no-store' }).then(async (res) => {
    if (!res.ok)
      throw new Error(`The server offers no demo sign-in (HTTP ${res.status}). Is it in demo mode?`);
    return (await res.json()) as DemoTokensResponse;
  });
  tokensCache = { at: Date.now(), promise };
  promise.catch(() => {
    if (tokensCache?.promise === promise) tokensCache = null;
  });
  return promise;
}

/** Forgets cached tokens (after the server refused one: a restarted demo server has a new secret). */
export function invalidateDemoTokens(): void {
  tokensCache = null;
}

/** A token source for `<PulseProvider token>`: re-read on every (re)connect, so a restarted demo server works. */
export function demoTokenFor(userId: string): () => Promise<string> {
  return async () => {
    const { users } = await fetchDemoTokens();
    const user = users.find((u) => u.sub === userId);
    if (!user) throw new Error(`Unknown demo user ${userId}`);
    return user.token;
  };
}

function readSession(): Session | null {
  try {
    const raw = localStorage.getItem(storageKey);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<Session>;
    return typeof value.userId === 'string' && typeof value.workspaceId === 'string'
      ? { userId: value.userId, workspaceId: value.workspaceId }
      : null;
  } catch {
    return null;
  }
}

/** The signed-in demo user and workspace, kept in localStorage per browser. */
export function useSession() {
  const [session, setSession] = useState<Session | null>(readSession);
  useEffect(() => {
    if (session) localStorage.setItem(storageKey, JSON.stringify(session));
    else localStorage.removeItem(storageKey);
  }, [session]);
  const signIn = useCallback((next: Session) => setSession(next), []);
  const signOut = useCallback(() => setSession(null), []);
  const switchWorkspace = useCallback(
    (workspaceId: string) => setSession((s) => (s ? { ...s, workspaceId } : s)),
    [],
  );
  return { session, signIn, signOut, switchWorkspace };
}

/** The demo users list, loaded once for the sign-in page and the shell. */
export function useDemoUsers() {
  const [state, setState] = useState<{ users: DemoUser[]; error: string | null; loading: boolean }>({
    users: [],
    error: null,
    loading: true,
  });
  useEffect(() => {
    let live = true;
    fetchDemoTokens(true).then(
      (r) => live && setState({ users: r.users.filter((u) => !u.service), error: null, loading: false }),
      (e: unknown) => live && setState({ users: [], error: (e as Error).message, loading: false }),
    );
    return () => {
      live = false;
    };
  }, []);
  return state;
}
