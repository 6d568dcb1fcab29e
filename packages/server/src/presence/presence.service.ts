import type { Principal } from '../auth/auth.schema.js';
import type { Hub } from '../infra/hub.js';
import { type LiveStream, liveEphemeral } from '../infra/live.js';
import {
  mergeEntries,
  type PresenceBackend,
  type PresenceChange,
  type PresenceEntry,
  presenceDiffers,
} from './presence.backend.js';
import type { LostEntriesSignal, SharedTyping } from './presence.redis.js';
import type {
  PresenceEvent,
  PresenceSetInput,
  TypingEntry,
  TypingEvent,
  TypingSetInput,
  UserPresence,
} from './presence.schema.js';

export interface PresenceServiceOptions {
  hub: Hub;
  backend: PresenceBackend;
  nodeId: string;
  /** A user leaves this long after their last connection closed, unless they come back. */
  graceMs: number;
  /** HTTP-set presence (no socket) and dead nodes' entries expire after this. */
  ttlMs: number;
  /** A typing indicator clears itself after this without a refresh. */
  typingTtlMs: number;
}

export const presenceTopic = (workspaceId: string) => `presence:${workspaceId}`;
export const typingTopic = (workspaceId: string) => `typing:${workspaceId}`;

const now = () => new Date().toISOString();

/** Team presence and typing: one merged presence per (workspace, user), typing that expires by itself. */
export class PresenceService {
  /** connectionId -> "workspaceId\u0000userId" keys it holds presence in. */
  private readonly connections = new Map<string, Set<string>>();
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  /**
   * Sockets that closed, with when: a `presence.set` still in flight for one of them (waiting on the
   * rate limiter or the backend) must not leave an entry nobody removes. Pruned by the sweeper.
   */
  private readonly closedConnections = new Map<string, number>();
  /** workspaceId -> "conversationId\u0000userId" -> typing state. */
  private readonly typing = new Map<string, Map<string, { entry: TypingEntry; timer: NodeJS.Timeout }>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly firstSweep: NodeJS.Timeout;
  private readonly unsubscribeLost: (() => void) | undefined;
  private readonly typingSweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: PresenceServiceOptions) {
    const every = Math.max(250, Math.min(30_000, Math.floor(opts.ttlMs / 2)));
    this.sweeper = setInterval(() => void this.sweep(), every);
    this.sweeper.unref();
    // NOTE: one sweep at start-up, so entries a crashed predecessor with this node id left go at once.
    this.firstSweep = setTimeout(() => void this.sweep(), 0);
    this.firstSweep.unref();
    // NOTE: typers whose node died are cleared by whichever node claims them first (shared typing only).
    this.typingSweeper = this.sharedTyping()
      ? setInterval(() => void this.sweepTyping(), Math.max(250, Math.floor(opts.typingTtlMs / 2)))
      : undefined;
    this.typingSweeper?.unref();
    const signal = opts.backend as PresenceBackend & Partial<LostEntriesSignal>;
    this.unsubscribeLost = signal.onEntriesLost?.(() => void this.sweep());
  }

  /** Sets the caller's presence for one connection (or, over HTTP, a presence that expires after the TTL). */
  async set(
    principal: Principal,
    connectionId: string | null,
    input: PresenceSetInput,
  ): Promise<UserPresence> {
    const at = Date.now();
    const connection = connectionId ?? `http:${principal.userId}`;
    const entry: PresenceEntry = {
      connectionId: connection,
      userId: principal.userId,
      name: principal.name,
      status: input.status,
      page: input.page ?? null,
      activity: input.activity ?? null,
      connectedAt: at,
      updatedAt: at,
      nodeId: this.opts.nodeId,
      expiresAt: connectionId ? null : at + this.opts.ttlMs,
    };
    // NOTE: the socket may have closed while this call waited (rate limiter, auth); its entry would
    // then be a ghost nobody removes. Re-checked after every await below.
    if (connectionId && this.closedConnections.has(connectionId)) return mergeEntries([entry])!;
    if (connectionId) {
      let keys = this.connections.get(connectionId);
      if (!keys) {
        keys = new Set();
        this.connections.set(connectionId, keys);
      }
      keys.add(`${input.workspaceId}\u0000${principal.userId}`);
    }
    const change = await this.opts.backend.upsert(input.workspaceId, entry);
    if (connectionId && this.closedConnections.has(connectionId)) {
      // Closed during the write: whatever the close scheduled may have run before the entry landed.
      const removed = await this.opts.backend.remove(input.workspaceId, principal.userId, connectionId);
      await this.publishChange({ ...removed, before: change.before ?? removed.before });
      return change.after ?? mergeEntries([entry])!;
    }
    await this.publishChange(change);
    return change.after!;
  }

  /**
   * The caller leaves one workspace now (switched workspace in the app) while its socket stays open:
   * this connection's entry goes without a grace period; other tabs of the user keep them present.
   */
  async leave(principal: Principal, connectionId: string | null, workspaceId: string): Promise<void> {
    const connection = connectionId ?? `http:${principal.userId}`;
    this.connections.get(connection)?.delete(`${workspaceId}\u0000${principal.userId}`);
    await this.publishChange(await this.opts.backend.remove(workspaceId, principal.userId, connection));
  }

  /** A socket closed: its presence entries go after the grace period (a reload within it shows nothing). */
  connectionClosed(connectionId: string): void {
    if (!this.closed) this.closedConnections.set(connectionId, Date.now());
    const keys = this.connections.get(connectionId);
    if (!keys) return;
    this.connections.delete(connectionId);
    const removeAll = async () => {
      for (const key of keys) {
        const [workspaceId, userId] = key.split('\u0000') as [string, string];
        await this.publishChange(await this.opts.backend.remove(workspaceId, userId, connectionId));
      }
    };
    if (this.opts.graceMs === 0 || this.closed) {
      void removeAll().catch(() => {});
      return;
    }
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer);
      void removeAll().catch(() => {});
    }, this.opts.graceMs);
    timer.unref();
    this.graceTimers.add(timer);
  }

  list(workspaceId: string): Promise<UserPresence[]> {
    return this.opts.backend.list(workspaceId);
  }

  get(workspaceId: string, userId: string): Promise<UserPresence | null> {
    return this.opts.backend.get(workspaceId, userId);
  }

  async isOnline(workspaceId: string, userId: string): Promise<boolean> {
    return (await this.opts.backend.get(workspaceId, userId)) !== null;
  }

  countOnline(workspaceId?: string): Promise<number> {
    return this.opts.backend.countOnline(workspaceId);
  }

  /** Live presence: a snapshot, then join/update/leave diffs. */
  onChange(workspaceId: string, signal?: AbortSignal): LiveStream<PresenceEvent> {
    return liveEphemeral<PresenceEvent>(this.opts.hub, {
      topic: presenceTopic(workspaceId),
      signal,
      initial: async () => [
        {
          data: {
            type: 'snapshot',
            workspaceId,
            at: now(),
            users: await this.opts.backend.list(workspaceId),
          },
        },
      ],
      coalesceKey: (event) =>
        event.type === 'snapshot' ? '*' : event.type === 'leave' ? event.userId : event.user.userId,
    });
  }

  /** Reports the caller typing (or not) in a conversation; it clears itself after the typing TTL. */
  async setTyping(principal: Principal, input: TypingSetInput): Promise<void> {
    const key = `${input.conversationId}\u0000${principal.userId}`;
    let states = this.typing.get(input.workspaceId);
    const existing = states?.get(key);
    if (existing) clearTimeout(existing.timer);
    if (!input.isTyping) {
      if (!existing) return;
      states!.delete(key);
      if (states!.size === 0) this.typing.delete(input.workspaceId);
      await this.shareTyping(() => this.sharedTyping()?.clearTyping(input.workspaceId, existing.entry));
      await this.publishTyping(input.workspaceId, existing.entry, false);
      return;
    }
    if (!states) {
      states = new Map();
      this.typing.set(input.workspaceId, states);
    }
    const entry: TypingEntry = {
      conversationId: input.conversationId,
      userId: principal.userId,
      name: principal.name,
    };
    const timer = setTimeout(() => {
      void this.setTyping(principal, { ...input, isTyping: false }).catch(() => {});
    }, this.opts.typingTtlMs);
    timer.unref();
    states.set(key, { entry, timer });
    await this.shareTyping(() =>
      this.sharedTyping()?.setTyping(input.workspaceId, entry, this.opts.typingTtlMs),
    );
    // NOTE: a refresh of an already-shown indicator only extends its timer; nobody needs a new event.
    if (!existing) await this.publishTyping(input.workspaceId, entry, true);
  }

  /** Live typing: who types now, then changes; optionally one conversation only. */
  onTyping(
    workspaceId: string,
    conversationId: string | undefined,
    signal?: AbortSignal,
  ): LiveStream<TypingEvent> {
    return liveEphemeral<TypingEvent>(this.opts.hub, {
      topic: typingTopic(workspaceId),
      signal,
      filter: conversationId
        ? (event) => event.type === 'typing_snapshot' || event.conversationId === conversationId
        : undefined,
      initial: async () => {
        const shared = this.sharedTyping();
        const own = () => [...(this.typing.get(workspaceId)?.values() ?? [])].map((s) => s.entry);
        // NOTE: while Redis is down the snapshot holds this node's own typers (as presence does).
        const all = shared ? await shared.listTyping(workspaceId).catch(own) : own();
        const typing = all.filter((e) => !conversationId || e.conversationId === conversationId);
        return [{ data: { type: 'typing_snapshot', workspaceId, at: now(), typing } }];
      },
    });
  }

  /**
   * Runs a write of shared typing state. NOTE: a failure (Redis down) is not the caller's: the
   * indicator still lives in this node's memory and its event reaches this node's subscribers;
   * the typing TTL clears it everywhere.
   */
  private async shareTyping(write: () => Promise<void> | undefined): Promise<void> {
    try {
      await write();
    } catch {
      // Redis down: this node's view only, until the indicator's TTL
    }
  }

  /** Typing state every node sees, when the backend keeps one (Redis); otherwise this node's memory. */
  private sharedTyping(): SharedTyping | undefined {
    const backend = this.opts.backend as PresenceBackend & Partial<SharedTyping>;
    return backend.listTyping ? (backend as SharedTyping) : undefined;
  }

  /** Timers and sockets this service holds (leak checks). */
  stats() {
    let typing = 0;
    for (const s of this.typing.values()) typing += s.size;
    return { connections: this.connections.size, graceTimers: this.graceTimers.size, typing };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.firstSweep);
    this.unsubscribeLost?.();
    clearInterval(this.typingSweeper);
    for (const timer of this.graceTimers) clearTimeout(timer);
    this.graceTimers.clear();
    for (const states of this.typing.values()) for (const s of states.values()) clearTimeout(s.timer);
    this.typing.clear();
    this.connections.clear();
    this.closedConnections.clear();
  }

  private async sweep(): Promise<void> {
    // NOTE: a call still in flight this long after its socket closed is not realistic; the TTL
    // (or a minute) bounds the tombstones' memory under connection churn.
    const keepFor = Math.max(60_000, this.opts.ttlMs);
    const cutoff = Date.now() - keepFor;
    for (const [id, closedAt] of this.closedConnections) {
      if (closedAt >= cutoff) break;
      this.closedConnections.delete(id);
    }
    try {
      for (const change of await this.opts.backend.sweep(Date.now())) await this.publishChange(change);
    } catch {
      // the next sweep retries
    }
  }

  private async sweepTyping(): Promise<void> {
    try {
      // The typer's own node clears its indicator at the TTL; only ones left a while past it are orphans.
      const grace = Math.min(this.opts.typingTtlMs, 1_000);
      for (const { workspaceId, entry } of (await this.sharedTyping()?.sweepTyping(Date.now(), grace)) ?? [])
        await this.publishTyping(workspaceId, entry, false);
    } catch {
      // the next sweep retries
    }
  }

  private async publishTyping(workspaceId: string, entry: TypingEntry, isTyping: boolean): Promise<void> {
    const event: TypingEvent = { type: 'typing', workspaceId, at: now(), ...entry, isTyping };
    await this.opts.hub.publish(typingTopic(workspaceId), event);
  }

  private async publishChange({ workspaceId, before, after }: PresenceChange): Promise<void> {
    let event: PresenceEvent | null = null;
    const at = now();
    if (!before && after) event = { type: 'join', workspaceId, at, user: after };
    else if (before && !after) event = { type: 'leave', workspaceId, at, userId: before.userId };
    else if (before && after && presenceDiffers(before, after))
      event = { type: 'update', workspaceId, at, user: after };
    if (event) await this.opts.hub.publish(presenceTopic(workspaceId), event);
  }
}
