/**
 * What a socket may hold: its place in the per-address count of unauthenticated sockets, its slot
 * in the user's connection cap (per node, or cluster-wide through a counter), and its token's
 * lifetime. Functions on the connection, not closures kept per socket.
 */
import { TRPCError } from '@trpc/server';
import type { Connection } from './connection.js';
import { CloseCode } from './protocol.js';
import { guard } from './transport.js';

/** The longest delay setTimeout holds (2^31-1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function countUnauthenticated(conn: Connection<unknown>, ip: string): void {
  const counts = conn.transport.unauthenticatedByIp;
  counts.set(ip, (counts.get(ip) ?? 0) + 1);
  conn.unauthenticatedIp = ip;
}

export function uncountUnauthenticated(conn: Connection<unknown>): void {
  const ip = conn.unauthenticatedIp;
  if (ip === null) return;
  conn.unauthenticatedIp = null;
  const counts = conn.transport.unauthenticatedByIp;
  const left = (counts.get(ip) ?? 1) - 1;
  if (left <= 0) counts.delete(ip);
  else counts.set(ip, left);
}

/**
 * Takes a slot of the user's connection cap for `conn`: false when the socket closed meanwhile
 * (nothing is counted for it), TOO_MANY_REQUESTS when the cap is reached.
 */
export async function admitUser(conn: Connection<unknown>, userId: string): Promise<boolean> {
  const { opts, limits, userConnections } = conn.transport;
  const count = (userConnections.get(userId) ?? 0) + 1;
  const counter = opts.connectionCounter;
  // NOTE: with a counter (cluster-wide in Redis) it decides; it counts locally when it cannot.
  const allowed = counter
    ? await counter.acquire(userId, conn.id, limits.maxConnectionsPerUser)
    : count <= limits.maxConnectionsPerUser;
  if (allowed && counter && conn.closed) counter.release(userId, conn.id);
  if (conn.closed) return false;
  if (!allowed) {
    throw new TRPCError({
      code: 'TOO_MANY_REQUESTS',
      message: `Connection limit (${limits.maxConnectionsPerUser}) reached for this user`,
    });
  }
  userConnections.set(userId, (userConnections.get(userId) ?? 0) + 1);
  conn.userId = userId;
  return true;
}

/** Gives the user's slot back (the socket closed). */
export function releaseUser(conn: Connection<unknown>): void {
  const userId = conn.userId;
  if (!userId) return;
  const { opts, userConnections } = conn.transport;
  opts.connectionCounter?.release(userId, conn.id);
  const left = (userConnections.get(userId) ?? 1) - 1;
  if (left <= 0) userConnections.delete(userId);
  else userConnections.set(userId, left);
}

/**
 * The socket's rights end with the token; wsLink reconnects and re-reads connectionParams.
 * NOTE: setTimeout holds at most 2^31-1 ms (24.8 days): a longer token re-arms until its real expiry.
 */
export function armExpiry(conn: Connection<unknown>, expiresAt: number): void {
  if (!Number.isFinite(expiresAt) || conn.closed) return;
  const remaining = expiresAt - Date.now();
  if (remaining <= 0) {
    conn.closeWith(CloseCode.unauthorized, 'Token expired');
    return;
  }
  conn.expiresAt = expiresAt;
  // NOTE: Node keeps one timer list per distinct delay, and inserting a new list into its queue is
  // most of what arming a timer costs: far delays are cut down to a whole number of
  // `EXPIRY_STEP_MS`, so the sockets accepted within a step share a few lists. The timer then
  // fires at most one step before the expiry and re-arms for the exact rest.
  const delay =
    remaining > MAX_TIMER_MS
      ? MAX_TIMER_MS
      : remaining > EXPIRY_STEP_MS
        ? remaining - (remaining % EXPIRY_STEP_MS)
        : remaining;
  // NOTE: a shared callback with the connection as argument: no closure per socket.
  conn.expiryTimer = setTimeout(expiryTimerFired, delay, conn);
  conn.expiryTimer.unref();
}

/** Far expiry timers are armed in whole steps of this (see `armExpiry`). */
const EXPIRY_STEP_MS = 1_000;

/** The expiry timer fired: the token's end, or a step on the way to it. */
function expiryTimerFired(conn: Connection<unknown>): void {
  guard(conn, () => {
    const expiresAt = conn.expiresAt;
    // NOTE: a timer may run a few ms before `Date.now()` reaches its delay (libuv's cached clock).
    if (expiresAt === null || expiresAt - Date.now() <= 1)
      conn.closeWith(CloseCode.unauthorized, 'Token expired');
    else armExpiry(conn, expiresAt);
  });
}
