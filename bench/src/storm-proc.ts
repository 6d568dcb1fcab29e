/**
 * Child processes of the storm bench: spawned pinned to a core with the descriptor limit raised, and
 * talked to over IPC with bounded waits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const srcDir = dirname(fileURLToPath(import.meta.url));

export class StormProc<TCommand, TReply extends { type: string }> {
  private readonly listeners = new Set<(reply: TReply) => void>();
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (reply: TReply) => {
      if (reply.type === 'error') console.error(`[${name}] ${(reply as { message?: string }).message}`);
      for (const listener of this.listeners) listener(reply);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  send(command: TCommand) {
    if (this.child.connected) this.child.send(command as object);
  }
  on(listener: (reply: TReply) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** The next reply of `type`; rejects on an error reply, on exit, or after `timeoutMs`. */
  next<T extends TReply['type']>(type: T, timeoutMs: number): Promise<Extract<TReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        off();
        this.child.off('exit', onExit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited while waiting for "${type}"`));
      };
      this.child.once('exit', onExit);
      const off = this.on((reply) => {
        if (reply.type === 'error' && type !== 'error') {
          done();
          reject(new Error(`${this.name}: ${(reply as { message?: string }).message}`));
          return;
        }
        if (reply.type !== type) return;
        done();
        resolve(reply as Extract<TReply, { type: T }>);
      });
    });
  }
  /** Sends `command` and waits for the reply of `type`. */
  ask<T extends TReply['type']>(command: TCommand, type: T, timeoutMs: number) {
    const reply = this.next(type, timeoutMs);
    this.send(command);
    return reply;
  }
  /** SIGKILL, and wait (bounded) for the exit. */
  async hardKill() {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  }
  /** `stop` over IPC, SIGKILL after 4 s. */
  async kill() {
    if (!this.alive) return;
    this.send({ cmd: 'stop' } as TCommand);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 4000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * `node --import tsx --conditions=source src/<script> <args>` pinned to `core` (taskset), with
 * `ulimit -n` raised to the hard limit. `exec` all the way down: the child's pid is node's pid.
 */
export function spawnStormNode(opts: {
  script: string;
  args: string[];
  core: number | null;
  env: NodeJS.ProcessEnv;
}): ChildProcess {
  // STORM_PROFILE_DIR=/tmp/p: a --cpu-prof profile of every process.
  const profile = process.env.STORM_PROFILE_DIR;
  const node = [
    process.execPath,
    '--expose-gc',
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
    '--import',
    'tsx',
    '--conditions=source',
    join(srcDir, opts.script),
    ...opts.args,
  ];
  const command = opts.core === null ? node : ['taskset', '-c', String(opts.core), ...node];
  return spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...command], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: opts.env,
    cwd: join(srcDir, '..'),
  });
}
