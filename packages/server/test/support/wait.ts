// NOTE: taken when this module loads, so `waitFor` keeps polling on the real clock while a test
// has installed fake timers (vi.useFakeTimers / @sinonjs/fake-timers replace the globals later).
const realSetTimeout = globalThis.setTimeout;
const realNow = performance.now.bind(performance);

export interface WaitOptions {
  /** How long to keep trying before rejecting (default 5000 ms: room for a loaded 2-core machine). */
  timeoutMs?: number;
  /** Pause between two tries (default 20 ms). */
  intervalMs?: number;
  /** Named in the timeout error. */
  message?: string;
}

/**
 * Retries `condition` until it neither throws nor returns `false` (a returned promise is awaited),
 * then resolves with what it returned. Use it instead of a fixed sleep: the test goes on as soon as
 * the condition holds and fails with the condition's last error when it never does. Works with any
 * assertion library (a throwing `expect(...)` is retried) and under fake timers.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Exclude<T, false>> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = realNow() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false) return value as Exclude<T, false>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (realNow() >= deadline) {
      const what = opts.message ? `${opts.message}: ` : '';
      if (lastError instanceof Error) {
        lastError.message = `waitFor: ${what}still failing after ${timeoutMs} ms: ${lastError.message}`;
        throw lastError;
      }
      throw new Error(
        `waitFor: ${what}condition still ${lastError === undefined ? 'false' : `failing (${String(lastError)})`} after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => realSetTimeout(resolve, intervalMs));
  }
}
