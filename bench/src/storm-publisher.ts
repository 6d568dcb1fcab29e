/**
 * The storm's publisher: a process with no socket (`createPublisher` from @pulse/server) sending a
 * durable workspace-wide notification `rate` times a second through PostgreSQL and Redis, through
 * the whole storm (also while the node is down). Sends are sequential: a slow send delays the next
 * tick instead of queueing (ticks missed that way are counted as `skipped`).
 */
import { createPublisher } from '@pulse/server';
import {
  type PublisherCommand,
  type PublisherReply,
  type StormPublisherOptions,
  stormEvent,
} from './storm-shared.js';

const reply = (message: PublisherReply) => process.send?.(message);

async function main() {
  const opts = JSON.parse(process.argv[2] ?? '{}') as StormPublisherOptions;
  const publisher = await createPublisher({
    databaseUrl: opts.databaseUrl,
    redisUrl: opts.redisUrl,
    redisPrefix: opts.redisPrefix,
    config: { logLevel: 'silent' },
  });
  let running = false;
  let seq = 0;
  let skipped = 0;
  const failed: number[] = [];
  let loop: Promise<void> = Promise.resolve();
  const run = async () => {
    const interval = 1000 / opts.rate;
    let due = performance.now();
    while (running) {
      seq += 1;
      const e = stormEvent(seq);
      try {
        await publisher.sendWorkspaceNotification(opts.workspaceId, {
          type: 'alert',
          title: e.title,
          body: e.body,
          data: { alertType: 'system', severity: 'info', message: e.data.message },
        });
      } catch (error) {
        failed.push(seq);
        if (failed.length <= 3) console.error(`[publisher] send ${seq}: ${(error as Error).message}`);
      }
      due += interval;
      const now = performance.now();
      if (due < now) {
        skipped += Math.floor((now - due) / interval);
        due = now;
      }
      await new Promise((resolve) => setTimeout(resolve, due - now));
    }
  };
  process.on('message', (message: PublisherCommand) => {
    if (message.cmd === 'start' && !running) {
      running = true;
      loop = run();
    } else if (message.cmd === 'finish') {
      running = false;
      void loop.then(() => reply({ type: 'finished', last: seq, failed, skipped }));
    } else if (message.cmd === 'stop') {
      running = false;
      void Promise.race([publisher.close(), new Promise((r) => setTimeout(r, 3000))]).then(() =>
        process.exit(0),
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
  reply({ type: 'ready' });
}

main().catch((error: Error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});
