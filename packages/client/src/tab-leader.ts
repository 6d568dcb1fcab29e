import { type TRPCLink, TRPCClientError, type createWSClient } from '@trpc/client';
import type { AppRouter } from '@pulse/server/contract';
import { observable, type Observer, type Unsubscribable } from '@trpc/server/observable';
import type { ConnectionState } from './createPulseClient.js';
import { PulseError, type PulseErrorContext } from './errors.js';

/** Whether this tab holds the shared socket (`leader`), uses another tab's (`follower`), or has its own (`solo`). */
export type TabRole = 'leader' | 'follower' | 'solo';

type WsClient = ReturnType<typeof createWSClient>;
type Op = { id: number | string; type: 'query' | 'mutation' | 'subscription'; path: string; input: unknown };
type Envelope = { result: { type?: string; id?: string; data?: unknown } };
type WireError = { message: string; shape: unknown };
type WireState = { status: ConnectionState['status']; attempt: number; error: PulseErrorContext | null };

// Every message carries `from` (the sender's tab id); replies carry `to`.
type Message =
  | { t: 'hello'; from: string }
  | { t: 'leader'; from: string; since: number }
  | { t: 'ping'; from: string }
  | { t: 'beat'; from: string }
  | { t: 'bye'; from: string }
  | { t: 'state'; from: string; state: WireState }
  | { t: 'op'; from: string; to: string; op: Op; lastEventId?: string }
  | { t: 'stop'; from: string; id: Op['id'] }
  | { t: 'res'; from: string; to: string; id: Op['id']; envelope: Envelope }
  | { t: 'err'; from: string; to: string; id: Op['id']; error: WireError }
  | { t: 'done'; from: string; to: string; id: Op['id'] }
  | { t: 'flag'; from: string; topic: string; value: boolean }
  | { t: 'token'; from: string; token: string };

/** One of this tab's own WebSocket operations: kept until it ends, re-sent to each new leader. */
interface ActiveOp {
  op: Op;
  observer: Observer<Envelope, TRPCClientError<AppRouter>>;
  /** Last tracked event id this tab saw (a subscription resumes from it after a hand-over). */
  lastEventId?: string;
  local?: Unsubscribable;
}

// NOTE: Pulse has no transformer (`transformer: false` in the contract): values go through as they are.
const identity = { serialize: (v: unknown) => v, deserialize: (v: unknown) => v };
const noTransformer = { input: identity, output: identity };

/** True where tabs can share one socket: a browser with Web Locks and BroadcastChannel. */
export function canShareConnection(): boolean {
  return (
    typeof window !== 'undefined' &&
    typeof BroadcastChannel !== 'undefined' &&
    typeof navigator !== 'undefined' &&
    typeof navigator.locks?.request === 'function'
  );
}

/** Reads the `sub` claim of a JWT without verifying it (only to pick the tab group); null if none. */
export function subjectOfToken(token: string): string | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(json) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

function claimsOf(token: string): { sub?: unknown; exp?: unknown } | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/**
 * The token the leader's socket should use: its own, or one another tab of the group refreshed, if
 * that one is of the same user and expires later. A token of another user is never picked.
 */
export function freshestToken(own: string | null, relayed: string | null, userKey: string): string | null {
  if (!relayed) return own;
  const theirs = claimsOf(relayed);
  if (theirs?.sub !== userKey) return own;
  if (!own) return relayed;
  const mine = claimsOf(own);
  const exp = (c: { exp?: unknown } | null) => (typeof c?.exp === 'number' ? c.exp : 0);
  return exp(theirs) > exp(mine) ? relayed : own;
}

function toWireError(error: unknown): WireError {
  const e = error as { message?: string; shape?: unknown };
  return { message: e?.message ?? String(error), shape: e?.shape ?? null };
}

function fromWireError(error: WireError): TRPCClientError<AppRouter> {
  // NOTE: the shape was produced by the leader's own tRPC client from the server's error reply.
  type Shape = NonNullable<ConstructorParameters<typeof TRPCClientError<AppRouter>>[1]>['result'];
  return new TRPCClientError<AppRouter>(
    error.message,
    error.shape ? { result: { error: error.shape } as Shape } : {},
  );
}

export interface TabGroupOptions {
  /** The socket URL; part of the group's name (one leader per origin, URL and user). */
  wsUrl: string;
  /** Resolves the user the group is for (the token's `sub`, or `userKey`). */
  userKey: () => Promise<string>;
  /** Opens (or returns) this tab's socket: called only while this tab leads. */
  socket: () => WsClient;
  /** Closes this tab's socket (on losing the lead by `close()`). */
  closeSocket: () => Promise<void>;
  /** This tab's own socket state (meaningful while it leads). */
  localState: () => ConnectionState;
  onLocalState: (listener: (state: ConnectionState) => void) => () => void;
  /** Reports the state to show in this tab (the leader's, mirrored in followers). */
  setState: (state: Partial<ConnectionState>) => void;
  /**
   * Closes this tab's raw socket at once (nothing more is sent on it) and hands back its tRPC client
   * to finish off: called when another tab took the lead from this one (it was frozen or stalled).
   */
  abandonSocket: () => WsClient | null;
  /**
   * A follower that hears nothing from the leader for this long (it answers every follower's ping)
   * takes the lock from it (`steal`) and connects: a frozen or hung leader tab. 0 turns it off.
   */
  stealAfterMs: number;
}

/**
 * A group of same-origin tabs of one user sharing one WebSocket: the tab holding the Web Lock
 * leads (opens the socket), the others forward their WebSocket operations to it over a
 * BroadcastChannel and get their own results back. When the leader goes (tab closed, crashed,
 * `close()`d) the lock passes to another tab, which connects; every tab re-sends its operations to
 * the new leader, subscriptions with the last event id that tab saw.
 */
export class TabGroup {
  readonly id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  role: TabRole = 'follower';
  private channel: BroadcastChannel | null = null;
  private leaderId: string | null = null;
  private readonly active = new Map<Op['id'], ActiveOp>();
  /** Operations the leader runs for followers, by `tab:opId`. */
  private readonly served = new Map<string, Unsubscribable>();
  private readonly flags = new Map<string, Map<string, boolean>>();
  private readonly flagListeners = new Set<() => void>();
  private releaseLock: (() => void) | null = null;
  private readonly abort = new AbortController();
  private offLocalState: (() => void) | null = null;
  private closed = false;
  private forwardedSeq = 0;
  private lockName: string | null = null;
  private releaseTabLock: (() => void) | null = null;
  private readonly watched = new Set<string>();
  private relayedToken: string | null = null;
  private key: string | null = null;
  private started: Promise<void> | null = null;
  private readonly onPageHide = () => this.post({ t: 'bye', from: this.id });
  /** When the leader this tab follows took the lock (`Date.now()` of its grant): older claims lose. */
  private leaderSince = 0;
  /** Leaves the lock queue (before stealing: the stolen lock takes this tab's place in it). */
  private queueAbort: AbortController | null = null;
  /** Counts this tab's terms as leader: a stolen lock only ends the term it was granted for. */
  private term = 0;
  private ticker: ReturnType<typeof setInterval> | null = null;
  /** `performance.now()` of the last tick: a long gap means this tab was frozen or throttled. */
  private lastTick = 0;
  /** `performance.now()` when this follower last heard the leader (or started listening). */
  private lastHeard = 0;
  private lastBeat = 0;
  /** A leader's check that it still holds the lock (after a gap), and what waits for it. */
  private verifying: Promise<void> | null = null;
  private readonly waiting: Array<() => void> = [];
  /** Ping period (ms): a quarter of `stealAfterMs`, at most 1 s. */
  private readonly heartbeatMs: number;

  constructor(private readonly opts: TabGroupOptions) {
    this.heartbeatMs = Math.max(50, Math.min(1_000, Math.floor(opts.stealAfterMs / 4)));
  }

  /** A gap between ticks longer than this means the tab's timers did not run (frozen, asleep). */
  private get gapMs() {
    return this.heartbeatMs * 2.5;
  }

  /** Joins the group (once): resolves the user key, opens the channel, queues for the lock. */
  start(): Promise<void> {
    this.started ??= this.join();
    return this.started;
  }

  private async join() {
    const key = await this.opts.userKey();
    if (this.closed) return;
    this.key = key;
    const name = `pulse:${this.opts.wsUrl}:${key}`;
    this.lockName = name;
    // NOTE: each tab holds a lock of its own for its lifetime; a tab that hears from another asks for
    // that lock, which the browser grants only once that tab is gone (closed, crashed, discarded),
    // even without a goodbye. That is how a leader stops a dead follower's subscriptions and every
    // tab forgets a dead tab's presence flags.
    await new Promise<void>((granted) => {
      navigator.locks
        .request(`${name}:tab:${this.id}`, { signal: this.abort.signal }, () => {
          granted();
          return new Promise<void>((resolve) => {
            this.releaseTabLock = resolve;
          });
        })
        .catch(() => granted());
    });
    if (this.closed) return;
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (event: MessageEvent<Message>) => this.onMessage(event.data);
    window.addEventListener('pagehide', this.onPageHide);
    this.opts.setState({ role: 'follower' });
    this.post({ t: 'hello', from: this.id });
    for (const [topic, values] of this.flags) {
      const mine = values.get(this.id);
      if (mine !== undefined) this.post({ t: 'flag', from: this.id, topic, value: mine });
    }
    this.lastTick = performance.now();
    this.lastHeard = this.lastTick;
    if (this.opts.stealAfterMs > 0) this.ticker = setInterval(this.tick, this.heartbeatMs);
    this.requestLock(false);
  }

  /**
   * Queues for the lock (or, `steal`, takes it from its holder at once). NOTE: the lock is held until
   * the returned promise settles, i.e. until `close()` or the tab dies; the browser then grants it to
   * the next tab in the queue (that is the hand-over). A stolen lock is released by the browser and
   * its `request` promise rejects: the tab it was taken from steps down.
   */
  private requestLock(steal: boolean, granted?: () => void): void {
    const name = this.lockName;
    if (!name || this.closed) return;
    let term = 0;
    const queue = steal ? null : new AbortController();
    if (queue) this.queueAbort = queue;
    // NOTE: `steal` takes no signal (the request is granted at once, never queued).
    const options: LockOptions = steal
      ? { mode: 'exclusive', steal: true }
      : { mode: 'exclusive', signal: queue!.signal };
    navigator.locks
      .request(name, options, () => {
        granted?.();
        if (this.closed) return undefined;
        if (queue && this.queueAbort === queue) this.queueAbort = null;
        term = this.becomeLeader();
        return new Promise<void>((resolve) => {
          this.releaseLock = resolve;
        });
      })
      .catch(() => {
        granted?.();
        if (term !== 0 && term === this.term && this.role === 'leader') this.stepDown();
      });
  }

  /** Heartbeat: a follower pings the leader (and steals a silent one), a leader checks for gaps. */
  private readonly tick = () => {
    if (this.closed) return;
    const now = performance.now();
    const slept = now - this.lastTick > this.gapMs;
    this.lastTick = now;
    if (this.role === 'leader') {
      // NOTE: this tab's timers did not run for a while: it may have been frozen and robbed of the
      // lock meanwhile. Anything it is asked to run waits until it has checked.
      if (slept) this.verifyLead();
      return;
    }
    // NOTE: a follower that itself did not run (frozen, asleep, throttled) cannot tell whether the
    // leader was silent: it gives the leader a fresh period instead of stealing.
    if (slept) this.lastHeard = now;
    else if (now - this.lastHeard > this.opts.stealAfterMs) this.steal();
    this.post({ t: 'ping', from: this.id });
  };

  /** Takes the lock from a leader that stopped answering (one tab at a time does it). */
  private steal() {
    const name = this.lockName;
    if (!name) return;
    navigator.locks
      .request(`${name}:steal`, { ifAvailable: true }, async (lock) => {
        if (!lock || this.closed || this.role === 'leader') return;
        // Another tab may have taken over while this one waited.
        if (performance.now() - this.lastHeard <= this.opts.stealAfterMs) return;
        this.queueAbort?.abort();
        this.queueAbort = null;
        await new Promise<void>((granted) => this.requestLock(true, granted));
      })
      .catch(() => {});
  }

  /** A leader after a gap: does it still hold the lock? If not it steps down; then what waited runs. */
  private verifyLead() {
    if (this.verifying) return;
    const name = this.lockName;
    this.verifying = navigator.locks
      .query()
      .then(
        (snapshot) => {
          // NOTE: this tab's clientId is the one holding its own tab lock.
          const held = snapshot.held ?? [];
          const me = held.find((lock) => lock.name === `${name}:tab:${this.id}`)?.clientId;
          return me !== undefined && held.some((lock) => lock.name === name && lock.clientId === me);
        },
        () => true,
      )
      .then((held) => {
        this.verifying = null;
        this.lastTick = performance.now();
        if (!held && this.role === 'leader') this.stepDown();
        for (const run of this.waiting.splice(0)) run();
      });
  }

  /** Whether a leader must check its lock before running anything (its timers stalled, or a check is on). */
  private mustVerify(): boolean {
    if (this.opts.stealAfterMs <= 0) return false;
    if (this.verifying) return true;
    if (performance.now() - this.lastTick <= this.gapMs) return false;
    this.verifyLead();
    return true;
  }

  /**
   * Another tab took the lock (this one was frozen or stalled): close the socket before anything
   * else is sent on it, drop what ran on it, and follow. This tab's own operations go to the new
   * leader (subscriptions from the last event id this tab saw); a mutation already sent on the old
   * socket fails instead (it may have run: sending it again could run it twice).
   */
  private stepDown() {
    this.term += 1;
    this.role = 'follower';
    this.leaderId = null;
    this.leaderSince = 0;
    this.releaseLock = null;
    this.offLocalState?.();
    this.offLocalState = null;
    const socket = this.opts.abandonSocket();
    for (const running of this.served.values()) running.unsubscribe();
    this.served.clear();
    for (const active of [...this.active.values()]) {
      const ran = active.local;
      if (!ran) continue;
      active.local = undefined;
      ran.unsubscribe();
      if (active.op.type !== 'subscription')
        this.finish(active, () =>
          active.observer.error(
            TRPCClientError.from(
              new Error(
                'This tab lost the lead while the operation was in flight: it may or may not have run',
              ),
            ),
          ),
        );
    }
    void socket?.close().catch(() => {});
    this.opts.setState({ status: 'reconnecting', role: 'follower' });
    this.lastHeard = performance.now();
    this.post({ t: 'hello', from: this.id });
    this.requestLock(false);
  }

  private becomeLeader(): number {
    this.term += 1;
    this.role = 'leader';
    this.leaderId = this.id;
    this.leaderSince = Date.now();
    this.lastTick = performance.now();
    const socket = this.opts.socket();
    void socket;
    this.offLocalState = this.opts.onLocalState((state) => {
      this.opts.setState({ ...state, role: 'leader' });
      this.post({ t: 'state', from: this.id, state: wire(state) });
    });
    this.opts.setState({ ...this.opts.localState(), role: 'leader' });
    this.post({ t: 'leader', from: this.id, since: this.leaderSince });
    this.post({ t: 'state', from: this.id, state: wire(this.opts.localState()) });
    for (const active of this.active.values()) this.dispatch(active);
    return this.term;
  }

  /** The link for this tab's WebSocket operations: run on the socket when leading, forwarded otherwise. */
  link: TRPCLink<AppRouter> =
    () =>
    ({ op }) =>
      observable<Envelope, TRPCClientError<AppRouter>>((observer) => {
        const active: ActiveOp = {
          op: { id: op.id, type: op.type, path: op.path, input: op.input },
          observer,
        };
        this.active.set(op.id, active);
        void this.start();
        this.dispatch(active);
        return () => {
          if (this.active.get(op.id) !== active) return;
          this.active.delete(op.id);
          active.local?.unsubscribe();
          if (this.role === 'follower' && this.leaderId) this.post({ t: 'stop', from: this.id, id: op.id });
        };
      }) as ReturnType<ReturnType<TRPCLink<AppRouter>>>;

  private dispatch(active: ActiveOp) {
    active.local?.unsubscribe();
    active.local = undefined;
    if (this.closed) {
      active.observer.error(TRPCClientError.from(new Error('Pulse client is closed')));
      return;
    }
    if (this.role === 'leader') {
      if (this.mustVerify()) {
        this.waiting.push(() => {
          if (this.active.get(active.op.id) === active && !active.local) this.dispatch(active);
        });
        return;
      }
      active.local = this.run(active.op, active.lastEventId, {
        next: (envelope) => this.deliver(active, envelope),
        error: (error) => this.finish(active, () => active.observer.error(error)),
        complete: () => this.finish(active, () => active.observer.complete()),
      });
      return;
    }
    // A follower without a known leader waits: the next `leader` message re-dispatches.
    if (this.leaderId)
      this.post({
        t: 'op',
        from: this.id,
        to: this.leaderId,
        op: active.op,
        lastEventId: active.lastEventId,
      });
  }

  private deliver(active: ActiveOp, envelope: Envelope) {
    if (envelope.result.type === 'data' && typeof envelope.result.id === 'string')
      active.lastEventId = envelope.result.id;
    active.observer.next(envelope);
  }

  private finish(active: ActiveOp, end: () => void) {
    if (this.active.get(active.op.id) === active) this.active.delete(active.op.id);
    end();
  }

  /** Runs one operation on this (leader) tab's socket. */
  private run(
    op: Op,
    lastEventId: string | undefined,
    sink: {
      next(envelope: Envelope): void;
      error(error: TRPCClientError<AppRouter>): void;
      complete(): void;
    },
  ): Unsubscribable {
    const socket = this.opts.socket();
    // NOTE: tRPC completes a request it is asked to drop: a run this tab drops itself (stepping down,
    // re-dispatching, a follower's stop) must not end the operation, so the sink is cut first.
    let live = true;
    const request = socket
      .request({ op: { ...op, id: Number(op.id), signal: null }, transformer: noTransformer, lastEventId })
      .subscribe({
        next: (envelope) => live && sink.next(envelope as Envelope),
        error: (error) => live && sink.error(error as TRPCClientError<AppRouter>),
        complete: () => live && sink.complete(),
      });
    return {
      unsubscribe: () => {
        live = false;
        request.unsubscribe();
      },
    };
  }

  /** Drops `tab`'s operations and flags once the browser says it is gone (its tab lock is free). */
  private watch(tab: string) {
    if (tab === this.id || this.watched.has(tab) || !this.lockName) return;
    this.watched.add(tab);
    navigator.locks
      .request(`${this.lockName}:tab:${tab}`, { signal: this.abort.signal }, () => {
        this.watched.delete(tab);
        if (!this.closed) this.tabGone(tab);
      })
      .catch(() => {});
  }

  private tabGone(tab: string) {
    this.dropTab(tab);
    if (tab === this.leaderId && this.role === 'follower') {
      this.leaderId = null;
      this.opts.setState({ status: 'reconnecting', role: 'follower' });
    }
  }

  private onMessage(msg: Message) {
    if (this.closed) return;
    if (msg.t !== 'bye') this.watch(msg.from);
    if (this.role === 'follower' && msg.from === this.leaderId) this.lastHeard = performance.now();
    // NOTE: a leader that was frozen may have lost the lock: it answers nothing until it checked.
    if (
      this.role === 'leader' &&
      (msg.t === 'hello' || msg.t === 'op' || msg.t === 'ping') &&
      this.mustVerify()
    ) {
      this.waiting.push(() => this.onMessage(msg));
      return;
    }
    switch (msg.t) {
      case 'ping':
        if (this.role === 'leader' && performance.now() - this.lastBeat >= this.heartbeatMs / 2) {
          this.lastBeat = performance.now();
          this.post({ t: 'beat', from: this.id });
        }
        return;
      case 'beat':
        return;
      case 'hello':
        if (this.role === 'leader') {
          this.post({ t: 'leader', from: this.id, since: this.leaderSince });
          this.post({ t: 'state', from: this.id, state: wire(this.opts.localState()) });
        }
        for (const [topic, values] of this.flags) {
          const mine = values.get(this.id);
          if (mine !== undefined) this.post({ t: 'flag', from: this.id, topic, value: mine });
        }
        return;
      case 'leader':
        if (msg.from === this.leaderId || this.role === 'leader') return;
        // NOTE: a leader that was robbed of the lock while frozen may still claim it on thaw (before
        // it noticed): the claim of the later grant wins.
        if (this.leaderId && (msg.since ?? 0) < this.leaderSince) return;
        this.leaderId = msg.from;
        this.leaderSince = msg.since ?? 0;
        this.lastHeard = performance.now();
        // NOTE: a new leader knows none of our operations: send them all again, subscriptions from
        // the last event id this tab saw (durable streams resume, ephemeral ones send a snapshot).
        for (const active of this.active.values()) this.dispatch(active);
        return;
      case 'state':
        if (msg.from !== this.leaderId || this.role === 'leader') return;
        this.opts.setState({
          status: msg.state.status,
          attempt: msg.state.attempt,
          error: msg.state.error ? new PulseError(msg.state.error) : null,
          role: 'follower',
        });
        return;
      case 'bye':
        this.tabGone(msg.from);
        return;
      case 'op': {
        if (msg.to !== this.id || this.role !== 'leader') return;
        const key = `${msg.from}:${msg.op.id}`;
        if (this.served.has(key)) return;
        const to = msg.from;
        const id = msg.op.id;
        let ended = false;
        const done = () => {
          ended = true;
          this.served.delete(key);
        };
        // NOTE: request ids are per socket: a follower's operation gets an id from a range of its
        // own (from 2^40), so it never collides with the leader's own ids (its TRPCClient counts from 1).
        this.forwardedSeq += 1;
        const running = this.run({ ...msg.op, id: 2 ** 40 + this.forwardedSeq }, msg.lastEventId, {
          next: (envelope) => this.post({ t: 'res', from: this.id, to, id, envelope }),
          error: (error) => {
            done();
            this.post({ t: 'err', from: this.id, to, id, error: toWireError(error) });
          },
          complete: () => {
            done();
            this.post({ t: 'done', from: this.id, to, id });
          },
        });
        if (!ended) this.served.set(key, running);
        return;
      }
      case 'stop': {
        const key = `${msg.from}:${msg.id}`;
        this.served.get(key)?.unsubscribe();
        this.served.delete(key);
        return;
      }
      case 'res':
      case 'err':
      case 'done': {
        // NOTE: only the current leader's replies count: a late one from a previous leader (its
        // operation was re-sent to the new one) would deliver an event twice.
        if (msg.to !== this.id || msg.from !== this.leaderId) return;
        const active = this.active.get(msg.id);
        if (!active || active.local) return;
        if (msg.t === 'res') this.deliver(active, msg.envelope);
        else if (msg.t === 'err') this.finish(active, () => active.observer.error(fromWireError(msg.error)));
        else this.finish(active, () => active.observer.complete());
        return;
      }
      case 'flag': {
        this.setFlagOf(msg.topic, msg.from, msg.value);
        return;
      }
      case 'token':
        if (typeof msg.token === 'string') this.relayedToken = msg.token;
        return;
    }
  }

  private dropTab(tab: string) {
    for (const [key, running] of this.served)
      if (key.startsWith(`${tab}:`)) {
        running.unsubscribe();
        this.served.delete(key);
      }
    let changed = false;
    for (const values of this.flags.values()) changed = values.delete(tab) || changed;
    if (changed) for (const listener of this.flagListeners) listener();
  }

  private setFlagOf(topic: string, tab: string, value: boolean) {
    let values = this.flags.get(topic);
    if (!values) {
      values = new Map();
      this.flags.set(topic, values);
    }
    if (values.get(tab) === value) return;
    values.set(tab, value);
    for (const listener of this.flagListeners) listener();
  }

  /** Tells the group this tab read a token (a refresh in any tab reaches the leader's next connect). */
  offerToken(token: string): void {
    if (this.role === 'follower') this.post({ t: 'token', from: this.id, token });
  }

  /**
   * The token for the leader's socket: its own (`own`, null when its source failed) or a fresher one
   * of the same user another tab offered.
   */
  tokenForSocket(own: string | null): string | null {
    return this.key ? freshestToken(own, this.relayedToken, this.key) : own;
  }

  /** Sets this tab's value of a flag every tab of the group sees (e.g. "this tab is visible and active"). */
  setFlag(topic: string, value: boolean): void {
    this.setFlagOf(topic, this.id, value);
    this.post({ t: 'flag', from: this.id, topic, value });
  }

  /** Whether any tab of the group (this one included) has the flag set; `others` skips this tab. */
  anyFlag(topic: string, others = false): boolean {
    for (const [tab, value] of this.flags.get(topic) ?? [])
      if (value && !(others && tab === this.id)) return true;
    return false;
  }

  /** Called when any tab's flag changes; returns the unsubscribe function. */
  onFlags(listener: () => void): () => void {
    this.flagListeners.add(listener);
    return () => this.flagListeners.delete(listener);
  }

  private post(msg: Message) {
    this.channel?.postMessage(msg);
  }

  /** Leaves the group: a leader closes its socket and releases the lock (another tab takes over). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.post({ t: 'bye', from: this.id });
    this.closed = true;
    this.abort.abort();
    this.queueAbort?.abort();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    for (const run of this.waiting.splice(0)) run();
    if (typeof window !== 'undefined') window.removeEventListener('pagehide', this.onPageHide);
    for (const running of this.served.values()) running.unsubscribe();
    this.served.clear();
    this.offLocalState?.();
    const wasLeader = this.role === 'leader';
    this.role = 'follower';
    if (wasLeader) await this.opts.closeSocket();
    this.releaseLock?.();
    this.releaseTabLock?.();
    this.channel?.close();
    this.channel = null;
  }
}

function wire(state: ConnectionState): WireState {
  return { status: state.status, attempt: state.attempt, error: state.error?.context ?? null };
}
