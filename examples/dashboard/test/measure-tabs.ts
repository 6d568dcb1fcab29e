// Issue 16 measurements (a script, never a test: it prints figures and asserts nothing).
//
//   cd examples/dashboard && npx tsx --conditions=source test/measure-tabs.ts
//
// 1. Hand-over time, PULSE_HANDOVER_RUNS (default 20) runs per way the leader goes: closed, crashed
//    (renderer crash: no goodbye, only the released Web Lock tells), frozen (its main thread paused
//    in the debugger: it keeps the lock and its socket, only its silence tells; the take-over waits
//    the client's `stealAfterMs`, default 5 s). Time from the leader going to the next tab showing
//    `leader` + `connected`.
// 2. What a follower's event costs the leader: (a) one postMessage of a ~0.6 KB result envelope in
//    a loop (the structured clone is the sender's work); (b) in a real leader tab with 3 followers,
//    the time its socket message handlers take per frame of a follower's subscription (parse, route,
//    postMessage), timed in the page around tRPC's own listeners. (Main-thread task time of the
//    whole tab, CDP TaskDuration, was tried: with 4 renderers on 2 busy cores it measures waiting.)
import { cpus, loadavg } from 'node:os';
import { type DemoServer, startDemoServer } from '@pulse/server/demo';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildApp, launchBrowser } from './harness.js';

const runs = Number(process.env.PULSE_HANDOVER_RUNS ?? 20);
const burst = Number(process.env.PULSE_COST_BURST ?? 100);
const rounds = Number(process.env.PULSE_COST_ROUNDS ?? 3);

const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

const summary = (list: number[], unit = 'ms', digits = 0) => {
  const sorted = [...list].sort((a, b) => a - b);
  const median =
    sorted.length % 2
      ? sorted[(sorted.length - 1) / 2]!
      : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return `median ${median.toFixed(digits)} ${unit}, min ${sorted[0]!.toFixed(digits)}, max ${sorted.at(-1)!.toFixed(digits)} (n=${sorted.length})`;
};

async function waitFor<T>(
  probe: () => Promise<T> | T,
  ok: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > until) throw new Error(`timed out waiting (last: ${JSON.stringify(value)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  const app = await buildApp();
  const demo: DemoServer = await startDemoServer({
    sqliteFile: ':memory:',
    staticDir: app.dir,
    generator: false,
    config: { port: 0, host: '127.0.0.1', logLevel: 'silent', presence: { graceMs: 5_000, ttlMs: 30_000 } },
  });
  const browser: Browser = await launchBrowser();
  console.log(`machine: ${cpus().length} cores, load average at start ${load()}`);
  try {
    const openTab = async (context: BrowserContext, signIn: boolean): Promise<Page> => {
      const page = await context.newPage();
      await page.goto(`${demo.server.url}/`);
      if (signIn) await page.getByTestId('signin-bob-acme').click();
      await page.locator('.shell[data-user="bob"]').waitFor();
      await page.locator('[data-testid="connection"]', { hasText: 'connected' }).waitFor();
      return page;
    };
    const roleOf = (page: Page) => page.getByTestId('connection').getAttribute('data-role');
    const leading = (page: Page) =>
      page.locator('[data-testid="connection"][data-role="leader"]', { hasText: 'connected' }).waitFor({
        timeout: 60_000,
      });

    // 1. Hand-over.
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    let open = [await openTab(context, true), await openTab(context, false)];
    await waitFor(
      async () => (await Promise.all(open.map(roleOf))).sort().join(),
      (r) => r === 'follower,leader',
    );
    const times: Record<'closed' | 'crashed' | 'frozen', number[]> = { closed: [], crashed: [], frozen: [] };
    const loadDuring: string[] = [];
    for (const how of ['closed', 'crashed', 'frozen'] as const) {
      if (runs === 0) break;
      for (let i = 0; i < runs; i += 1) {
        const roles = await Promise.all(open.map(roleOf));
        const leader = open[roles.indexOf('leader')]!;
        const follower = open.find((t) => t !== leader)!;
        let started = performance.now();
        const cdp = how === 'closed' ? null : await context.newCDPSession(leader);
        if (how === 'closed') await leader.close();
        else if (how === 'crashed') void cdp!.send('Page.crash').catch(() => {});
        else {
          await cdp!.send('Debugger.enable');
          const paused = new Promise<void>((resolve) => cdp!.once('Debugger.paused', () => resolve()));
          await cdp!.send('Debugger.pause');
          await paused;
          // From the moment its main thread stopped.
          started = performance.now();
        }
        await leading(follower);
        times[how].push(performance.now() - started);
        if (how === 'frozen') {
          await cdp!.send('Debugger.resume');
          await waitFor(
            () => roleOf(leader),
            (r) => r === 'follower',
          );
        }
        if (how !== 'closed') await leader.close();
        open = [follower, await openTab(context, false)];
        await waitFor(
          async () => (await Promise.all(open.map(roleOf))).sort().join(),
          (r) => r === 'follower,leader',
        );
      }
      loadDuring.push(`${how}: ${load()}`);
      console.log(`hand-over, leader ${how}: ${summary(times[how])}; load average ${load()}`);
    }
    await context.close();

    // 2a. postMessage of one envelope, in a tab.
    const probeContext = await browser.newContext();
    const probe = await openTab(probeContext, true);
    const perMessageUs = await probe.evaluate(() => {
      const channel = new BroadcastChannel('pulse-cost-probe');
      const envelope = {
        t: 'res',
        from: 'tab-a',
        to: 'tab-b',
        id: 12,
        envelope: {
          result: {
            type: 'data',
            id: '1733150000000-0',
            data: {
              type: 'notification',
              notification: { id: 'n1', title: 'x'.repeat(80), body: 'y'.repeat(400) },
            },
          },
        },
      };
      const results: number[] = [];
      for (let round = 0; round < 5; round += 1) {
        const n = 5_000;
        const t0 = performance.now();
        for (let i = 0; i < n; i += 1) channel.postMessage(envelope);
        results.push(((performance.now() - t0) * 1000) / n);
      }
      channel.close();
      return results;
    });
    console.log(
      `postMessage of a ~0.6 KB envelope: ${summary(perMessageUs, 'µs', 1)} (5 rounds of 5000); load average ${load()}`,
    );
    await probeContext.close();

    // 2b. In the leader tab of 1 + 3 tabs: time spent in the socket's message handlers per frame
    //     that carries a follower's event (ids from 2^40: parse, route, postMessage to that tab),
    //     against the frames of the leader's own subscriptions (which also update its own UI).
    // NOTE: plain JS text, not a function: tsx's transform would add helpers the page does not have.
    const timeSocketHandlers = `(() => {
      const cost = { forwardedMs: 0, forwarded: 0, ownMs: 0, own: 0 };
      window.__cost = cost;
      const add = WebSocket.prototype.addEventListener;
      WebSocket.prototype.addEventListener = function (type, listener, options) {
        if (type !== 'message' || typeof listener !== 'function') return add.call(this, type, listener, options);
        const timed = function (event) {
          const t0 = performance.now();
          try {
            listener.call(this, event);
          } finally {
            const ms = performance.now() - t0;
            const data = event.data;
            const id = typeof data === 'string' && data.startsWith('{') ? JSON.parse(data).id : null;
            if (typeof id === 'number' && id >= 2 ** 40) {
              cost.forwardedMs += ms;
              cost.forwarded += 1;
            } else if (typeof id === 'number') {
              cost.ownMs += ms;
              cost.own += 1;
            }
          }
        };
        return add.call(this, type, timed, options);
      };
    })();`;
    let seq = 0;
    const unseen = async (page: Page) => {
      const label = (await page.getByTestId('bell').getAttribute('aria-label')) ?? '';
      return Number(/(\d+) new/.exec(label)?.[1] ?? 0);
    };
    const forwardedUs: number[] = [];
    const ownUs: number[] = [];
    const frames: string[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        await ctx.addInitScript({ content: timeSocketHandlers });
        const tabs = [await openTab(ctx, true)];
        for (let i = 0; i < 3; i += 1) tabs.push(await openTab(ctx, false));
        const leader = tabs[(await Promise.all(tabs.map(roleOf))).indexOf('leader')]!;
        await new Promise((r) => setTimeout(r, 1_000));
        const before = await Promise.all(tabs.map(unseen));
        await leader.evaluate(() => {
          const cost = (window as unknown as { __cost: Record<string, number> }).__cost;
          for (const key of Object.keys(cost)) cost[key] = 0;
        });
        for (let i = 0; i < burst; i += 1) {
          seq += 1;
          await demo.server.caller.notifications.send({
            workspaceId: 'acme',
            userId: 'bob',
            type: 'mention',
            title: `cost-${seq}`,
            data: { platform: 'other', author: 'Alice Admin', text: `cost-${seq}` },
          });
        }
        for (const [i, tab] of tabs.entries())
          await waitFor(
            () => unseen(tab),
            (n) => n >= before[i]! + burst,
          );
        const cost = await leader.evaluate(
          () => (window as unknown as { __cost: Record<string, number> }).__cost,
        );
        forwardedUs.push((cost.forwardedMs! * 1000) / cost.forwarded!);
        ownUs.push((cost.ownMs! * 1000) / cost.own!);
        frames.push(`${cost.forwarded} forwarded, ${cost.own} own`);
      } finally {
        await ctx.close();
      }
    }
    console.log(
      `leader, per socket frame for a follower (parse + route + postMessage): ${summary(forwardedUs, 'µs', 1)}; per frame of its own subscriptions (incl. its own UI update): ${summary(ownUs, 'µs', 1)}; ${burst} notifications, 1 leader + 3 followers, frames per round: ${frames.join('; ')}; load average ${load()}`,
    );
    console.log(`load average after each hand-over series: ${loadDuring.join('; ')}`);
  } finally {
    await browser.close();
    await demo.close({ graceMs: 0 });
    await app[Symbol.asyncDispose]();
  }
}

await main();
