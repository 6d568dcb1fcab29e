/** Who the token says the viewer is (read from the JWT payload; the server verifies, we only display). */
export interface Viewer {
  userId: string;
  name: string | null;
}

/** Reads `sub` and `name` from a JWT without verifying it; null when it is not a JWT. */
export function viewerFromToken(token: string): Viewer | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as { sub?: unknown; name?: unknown };
    if (typeof claims.sub !== 'string') return null;
    return { userId: claims.sub, name: typeof claims.name === 'string' ? claims.name : null };
  } catch {
    return null;
  }
}
