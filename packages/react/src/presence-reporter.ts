import { type ConnectionState, type PulseError, toPulseError } from '@pulse/client';
import type { PresenceSetInput, UserPresence } from '@pulse/client';

/** What a page may say about the viewer's presence; `status` is what the user chose. */
export type PresencePatch = Partial<Omit<PresenceSetInput, 'workspaceId'>>;

export interface PresenceReporterState {
  /** The viewer's presence as the server last confirmed it. */
  me: UserPresence | null;
  /** The last failed `presence.set`, cleared by the next success. */
  error: PulseError | null;
}

export interface PresenceReporterOptions {
  workspaceId: string;
  send(input: PresenceSetInput): Promise<UserPresence>;
  /** Leaves the workspace on this socket at once (`presence.leave`) when the last hook lets go. */
  leave?(workspaceId: string): Promise<unknown>;
  connection: {
    getConnectionState(): ConnectionState;
    onConnectionState(listener: (state: ConnectionState) => void): () => void;
    /** The client's tab group when tabs share one socket: `away` then means no tab is visible and active. */
    tabs?: {
      setFlag(topic: string, value: boolean): void;
      anyFlag(topic: string, others?: boolean): boolean;
      onFlags(listener: () => void): () => void;
    } | null;
  };
  /** Marks the viewer `away` after this long without input (ms). */
  idleMs: number;
}

const activityEvents = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'] as const;

/**
 * The viewer's own presence in one workspace, shared by every hook that reports it: one desired
 * state (status, page, activity), automatic `away` on idle or a hidden tab, and a re-send after
 * every reconnect (presence set over the socket ends with that socket). Framework-agnostic.
 */
export class PresenceReporter {
  private desired: PresencePatch = { status: 'online' };
  private autoAway = false;
  private lastActivity = Date.now();
  private lastSent: string | null = null;
  private inFlight = false;
  private dirty = false;
  private state: PresenceReporterState = { me: null, error: null };
  private readonly listeners = new Set<() => void>();
  private readonly cleanups: Array<() => void> = [];
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private retainers = 0;
  private leaveTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;

  constructor(private readonly opts: PresenceReporterOptions) {}

  private get activeTopic() {
    return `presence-active:${this.opts.workspaceId}`;
  }

  private get retainedTopic() {
    return `presence-retained:${this.opts.workspaceId}`;
  }

  /** Starts reporting (first retainer) and returns the release function. */
  retain(): () => void {
    this.retainers += 1;
    if (this.retainers === 1) this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.retainers -= 1;
      if (this.retainers === 0) this.stop();
    };
  }

  get retained(): boolean {
    return this.retainers > 0;
  }

  /** Merges `patch` into the viewer's presence and sends it (skipped when nothing changed). */
  update(patch: PresencePatch): void {
    this.desired = { ...this.desired, ...patch };
    this.flush();
  }

  /** Changes the idle threshold (ms); takes effect at the next check. */
  setIdleMs(idleMs: number): void {
    if (idleMs === this.opts.idleMs) return;
    this.opts.idleMs = idleMs;
    if (this.retainers > 0) this.scheduleIdleCheck();
  }

  getSnapshot = (): PresenceReporterState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Stops timers and listeners for good. */
  dispose(): void {
    clearTimeout(this.leaveTimer);
    this.disposed = true;
    this.stop();
    this.listeners.clear();
  }

  private start() {
    clearTimeout(this.leaveTimer);
    this.leaveTimer = undefined;
    this.lastActivity = Date.now();
    this.autoAway = typeof document !== 'undefined' && document.visibilityState === 'hidden';
    const tabs = this.opts.connection.tabs;
    if (tabs) {
      // NOTE: tabs sharing one socket are one presence: every tab says whether it is visible and
      // active, and each sends the merged status, so the user is away only when all tabs are.
      tabs.setFlag(this.activeTopic, !this.autoAway);
      tabs.setFlag(this.retainedTopic, true);
      this.cleanups.push(tabs.onFlags(() => this.flush()));
    }
    if (typeof window !== 'undefined') {
      const onActivity = () => this.onActivity();
      for (const name of activityEvents) window.addEventListener(name, onActivity, { passive: true });
      this.cleanups.push(() => {
        for (const name of activityEvents) window.removeEventListener(name, onActivity);
      });
    }
    if (typeof document !== 'undefined') {
      const onVisibility = () => {
        if (document.visibilityState === 'hidden') this.setAutoAway(true);
        else this.onActivity();
      };
      document.addEventListener('visibilitychange', onVisibility);
      this.cleanups.push(() => document.removeEventListener('visibilitychange', onVisibility));
    }
    let wasConnected = this.opts.connection.getConnectionState().status === 'connected';
    this.cleanups.push(
      this.opts.connection.onConnectionState((state) => {
        const connected = state.status === 'connected';
        // NOTE: a new socket carries no presence: whatever we said before must be said again.
        if (connected && !wasConnected) {
          this.lastSent = null;
          this.flush();
        }
        wasConnected = connected;
      }),
    );
    this.scheduleIdleCheck();
    this.flush();
  }

  private stop() {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    const tabs = this.opts.connection.tabs;
    tabs?.setFlag(this.activeTopic, false);
    tabs?.setFlag(this.retainedTopic, false);
    // NOTE: leave a moment later, so StrictMode's unmount/remount (or a quick re-mount on navigation)
    // does not show others a leave and a join; a re-retain cancels it.
    if (this.opts.leave && this.lastSent !== null && !this.disposed) {
      this.leaveTimer = setTimeout(() => {
        this.leaveTimer = undefined;
        this.lastSent = null;
        this.setState({ me: null, error: null });
        // Another tab on the shared socket still shows this workspace: the user has not left it.
        if (this.opts.connection.tabs?.anyFlag(this.retainedTopic, true)) return;
        void this.opts.leave?.(this.opts.workspaceId).catch(() => {});
      }, 250);
    }
  }

  private onActivity() {
    this.lastActivity = Date.now();
    if (this.autoAway && (typeof document === 'undefined' || document.visibilityState !== 'hidden')) {
      this.setAutoAway(false);
      this.scheduleIdleCheck();
    }
  }

  private scheduleIdleCheck() {
    clearTimeout(this.idleTimer);
    if (this.retainers === 0 || this.disposed) return;
    const due = this.lastActivity + this.opts.idleMs - Date.now();
    this.idleTimer = setTimeout(
      () => {
        if (Date.now() - this.lastActivity >= this.opts.idleMs) this.setAutoAway(true);
        else this.scheduleIdleCheck();
      },
      Math.max(0, due),
    );
  }

  private setAutoAway(away: boolean) {
    if (this.autoAway === away) return;
    this.autoAway = away;
    if (this.retainers > 0) this.opts.connection.tabs?.setFlag(this.activeTopic, !away);
    this.flush();
  }

  private effectiveInput(): PresenceSetInput {
    const tabs = this.opts.connection.tabs;
    const away = tabs ? !tabs.anyFlag(this.activeTopic) : this.autoAway;
    const status = away ? 'away' : (this.desired.status ?? 'online');
    return { ...this.desired, workspaceId: this.opts.workspaceId, status };
  }

  private flush() {
    if (this.retainers === 0 || this.disposed) return;
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    const input = this.effectiveInput();
    const key = JSON.stringify(input);
    if (key === this.lastSent) return;
    this.inFlight = true;
    this.lastSent = key;
    this.opts
      .send(input)
      .then(
        (me) => this.setState({ me, error: null }),
        (error: unknown) => {
          this.lastSent = null;
          const pulseError = toPulseError(error);
          // NOTE: a socket that dropped mid-send is not the caller's error: the reconnect re-sends.
          if (pulseError.context.type !== 'CONNECTION') this.setState({ ...this.state, error: pulseError });
        },
      )
      .finally(() => {
        this.inFlight = false;
        if (this.dirty) {
          this.dirty = false;
          this.flush();
        }
      });
  }

  private setState(next: PresenceReporterState) {
    this.state = next;
    for (const listener of this.listeners) listener();
  }
}
