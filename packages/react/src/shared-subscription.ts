import { useCallback, useEffect, useRef, useSyncExternalStore } from 'react';

/** What every hook instance reading one shared subscription sees. */
export interface SharedSnapshot<TState> {
  /** The state folded from the events so far (null before the first event). */
  state: TState | null;
  /** The server acknowledged the subscription (tRPC `started`). */
  started: boolean;
  /** The subscription's last error (null while fine). */
  error: unknown;
}

/** Callbacks a source calls; it returns the function that ends the upstream subscription. */
export interface SharedSubscriptionHandlers<TEvent> {
  onStarted(): void;
  onData(event: TEvent): void;
  onError(error: unknown): void;
}

export interface SharedSubscriptionOptions<TEvent, TState> {
  /** Opens the one upstream (server) subscription; returns how to end it. */
  open(handlers: SharedSubscriptionHandlers<TEvent>): () => void;
  /** Folds one event into the shared state (optional: side-effect-only subscriptions keep none). */
  reduce?(state: TState | null, event: TEvent): TState;
  /** Runs once per event, whatever the number of readers (e.g. to update a query cache). */
  onEvent?(event: TEvent): void;
  /** Runs once when a failed subscription is opened again (it has no resume point: refetch). */
  onRestart?(): void;
}

const initial = { state: null, started: false, error: null } as const;

/**
 * One server subscription shared by every hook instance with the same procedure and input, with
 * one store of its folded state, reference-counted: the first reader opens it, the last one to
 * leave closes it (a tick later, so StrictMode's unmount/remount or a re-mount on navigation keeps
 * it). A framework-agnostic external store: hooks read it with `useSyncExternalStore`.
 */
export class SharedSubscription<TEvent, TState> {
  private snapshot: SharedSnapshot<TState> = initial;
  private readonly listeners = new Set<() => void>();
  private readonly eventListeners = new Set<(event: TEvent) => void>();
  private retainers = 0;
  private stopUpstream: (() => void) | null = null;
  private stopTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly opts: SharedSubscriptionOptions<TEvent, TState>,
    /** Called when the last reader left and the upstream subscription ended. */
    private readonly onIdle: () => void = () => {},
  ) {}

  /** Starts (first reader) and returns the release function. */
  retain(): () => void {
    this.retainers += 1;
    clearTimeout(this.stopTimer);
    this.stopTimer = undefined;
    if (!this.stopUpstream) this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.retainers -= 1;
      if (this.retainers > 0) return;
      this.stopTimer = setTimeout(() => {
        this.stopTimer = undefined;
        if (this.retainers > 0) return;
        this.stop();
        this.onIdle();
      }, 0);
    };
  }

  /** How many readers hold it (tests, devtools). */
  get readers(): number {
    return this.retainers;
  }

  getSnapshot = (): SharedSnapshot<TState> => this.snapshot;

  /** Calls `listener` with every event (for one reader's own state, e.g. its optimistic sends). */
  listen(listener: (event: TEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /**
   * Opens the upstream subscription again after `failed` ended it (a dropped socket); a no-op when
   * another reader already restarted it, so N readers recovering at once restart it once.
   */
  restart(failed: unknown): boolean {
    if (failed === null || this.snapshot.error !== failed || this.retainers === 0) return false;
    this.stopUpstream?.();
    this.stopUpstream = null;
    this.set({ ...this.snapshot, started: false, error: null });
    this.start();
    this.opts.onRestart?.();
    return true;
  }

  private start() {
    let active = true;
    const stop = this.opts.open({
      onStarted: () => {
        if (active) this.set({ ...this.snapshot, started: true, error: null });
      },
      onData: (event) => {
        if (!active) return;
        this.opts.onEvent?.(event);
        if (this.opts.reduce)
          this.set({ ...this.snapshot, state: this.opts.reduce(this.snapshot.state, event) });
        // NOTE: each reader's own handler (`listen`), after the shared state has the event.
        for (const listener of this.eventListeners) listener(event);
      },
      onError: (error) => {
        if (active) this.set({ ...this.snapshot, error });
      },
    });
    this.stopUpstream = () => {
      active = false;
      stop();
    };
  }

  private stop() {
    this.stopUpstream?.();
    this.stopUpstream = null;
    this.snapshot = initial;
  }

  private set(next: SharedSnapshot<TState>) {
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}

/** The shared subscriptions of one `<PulseProvider>`, by key (procedure path and input). */
export class SubscriptionRegistry {
  // biome-ignore lint/suspicious/noExplicitAny: entries of every event and state type live here
  private readonly entries = new Map<string, SharedSubscription<any, any>>();

  /** The entry for `key`, created by `create` the first time (creating opens nothing). */
  get<TEvent, TState>(
    key: string,
    create: () => SharedSubscriptionOptions<TEvent, TState>,
  ): SharedSubscription<TEvent, TState> {
    let entry = this.entries.get(key) as SharedSubscription<TEvent, TState> | undefined;
    if (!entry) {
      const created: SharedSubscription<TEvent, TState> = new SharedSubscription(create(), () => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
      entry = created;
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Keys with an entry (tests, devtools). */
  keys(): string[] {
    return [...this.entries.keys()];
  }
}

/** The key of a subscription: procedure path and input (inputs are small JSON objects). */
export function subscriptionKey(path: string, input: unknown): string {
  return `${path}\u0000${JSON.stringify(input)}`;
}

/**
 * Equality of two selected values: identical, or arrays / plain objects whose entries are equal
 * `depth` levels down (default 1: entries compared by identity).
 */
export function shallowEqual(a: unknown, b: unknown, depth = 1): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every(
    (k) =>
      Object.hasOwn(rb, k) && (depth > 1 ? shallowEqual(ra[k], rb[k], depth - 1) : Object.is(ra[k], rb[k])),
  );
}

/** What a hook reads from a shared subscription: its selected state and its status. */
export interface SharedReading<TSelected> {
  /** The selected state (`select(null)` before the first event). */
  value: TSelected;
  hasData: boolean;
  started: boolean;
  error: unknown;
}

/**
 * Reads a shared subscription (retained while mounted, when `entry` is not null) through a
 * selector: the component re-renders only when the selected value changes (shallowly) or the
 * subscription's status does. Returns the reading and a `subscription` view for recovery.
 */
export function useSharedSubscription<TEvent, TState, TSelected>(
  entry: SharedSubscription<TEvent, TState> | null,
  select: (state: TState | null) => TSelected,
  /** This reader's own handler of every event (after the shared `onEvent` and `reduce`). */
  onReaderEvent?: (event: TEvent) => void,
): SharedReading<TSelected> & { subscription: { status: string; error: unknown; reset: () => void } } {
  const readerEvent = useRef(onReaderEvent);
  readerEvent.current = onReaderEvent;
  useEffect(() => {
    if (!entry) return;
    const unlisten = entry.listen((event) => readerEvent.current?.(event));
    const release = entry.retain();
    return () => {
      unlisten();
      release();
    };
  }, [entry]);
  // NOTE: the selector is read through a ref so an inline arrow does not re-subscribe every render;
  // each render's selector is applied once (the cache is keyed by snapshot and selector), and an
  // equal result keeps the previous value, so React sees a stable snapshot.
  const selectRef = useRef(select);
  selectRef.current = select;
  const cache = useRef<{
    snapshot: SharedSnapshot<TState>;
    select: typeof select;
    reading: SharedReading<TSelected>;
  } | null>(null);
  const getReading = useCallback((): SharedReading<TSelected> => {
    const snapshot = entry ? entry.getSnapshot() : initial;
    const last = cache.current;
    if (last && last.snapshot === snapshot && last.select === selectRef.current) return last.reading;
    const value = selectRef.current(snapshot.state);
    const next: SharedReading<TSelected> = {
      // NOTE: two levels: a hook's value is an object of selected parts, e.g. `{ users, me }`.
      value: last && shallowEqual(last.reading.value, value, 2) ? last.reading.value : value,
      hasData: snapshot.state !== null,
      started: snapshot.started,
      error: snapshot.error,
    };
    const reading = last && shallowEqual(last.reading, next) ? last.reading : next;
    cache.current = { snapshot, select: selectRef.current, reading };
    return reading;
  }, [entry]);
  const subscribe = useCallback((listener: () => void) => entry?.subscribe(listener) ?? (() => {}), [entry]);
  const reading = useSyncExternalStore(subscribe, getReading, getReading);
  const { error } = reading;
  const reset = useCallback(() => void entry?.restart(error), [entry, error]);
  return {
    ...reading,
    subscription: { status: error ? 'error' : reading.started ? 'pending' : 'connecting', error, reset },
  };
}
