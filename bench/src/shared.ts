/** Messages and payloads shared by the bench runner, its server processes and its load clients. */
import { readFileSync } from 'node:fs';

/** The servers under test. `pulse-*` run the real Pulse node; `ws-*` variants measure encodings. */
export const serverKinds = [
  'ws',
  'socketio',
  'pulse-presence',
  'pulse-dashboard',
  'pulse-notifications',
  /** An app's own durable channel (`defineChannel`), one topic key every subscriber shares. */
  'pulse-channel',
  'ws-deflate',
  'ws-msgpack',
] as const;
export type ServerKind = (typeof serverKinds)[number];

/** The wire protocol a load client speaks. */
export type ClientProtocol = 'ws' | 'socketio' | 'trpc';

export const WORKSPACE_ID = 'bench';
/** Subscribers find the sequence number of each event by this marker. */
export const SEQ_MARKER = 'bench#';
/** The topic key of the `pulse-channel` subscribers. */
export const BENCH_POST_ID = 'post-0042';

export function protocolOf(kind: ServerKind): ClientProtocol {
  if (kind === 'socketio') return 'socketio';
  if (kind.startsWith('pulse')) return 'trpc';
  return 'ws';
}

/** Runner -> server process. */
export type ServerCommand =
  | { cmd: 'publish'; seq: number }
  | { cmd: 'stats'; gc: boolean }
  | { cmd: 'heapSnapshot'; path: string }
  | { cmd: 'stop' };

/** Server process -> runner. */
export type ServerReply =
  /** `fdLimit`: the process's soft RLIMIT_NOFILE (sockets it can hold, less a few descriptors). */
  | { type: 'ready'; port: number; path: string; fdLimit?: number }
  | {
      type: 'stats';
      rss: number;
      heapUsed: number;
      cpuMicros: number;
      /** User CPU only: system time also holds softirq work of other processes' loopback traffic. */
      userMicros?: number;
      extra: Record<string, number>;
      /** Monotonic clock, µs (the clock of a `--cpu-prof`'s timestamps): marks a window in a profile. */
      monoMicros?: number;
      /** Event-loop delay since the previous stats call, ms (`monitorEventLoopDelay`, 10 ms resolution). */
      loopDelay?: { p50: number; p99: number; max: number };
    }
  | { type: 'heapSnapshot'; path: string }
  | { type: 'error'; message: string };

/** Runner -> load client. */
export type ClientCommand = { cmd: 'record'; on: boolean } | { cmd: 'counts' } | { cmd: 'stop' };

/** Load client -> runner. */
export type ClientReply =
  /** `firstError`: the first failed connect's error, so a refusal names its cause. */
  | { type: 'ready'; sockets: number; failed: number; firstError?: string }
  | { type: 'done'; seq: number; times: number[] | null }
  | {
      type: 'counts';
      received: number;
      errors: number;
      closed: number;
      cpuMicros: number;
      trackedIds: number;
    }
  | { type: 'error'; message: string };

/** Wall clock with sub-millisecond resolution, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A dashboard-like event of about 400 bytes as JSON. The same object is broadcast by every
 * server, so frames differ only by each protocol's envelope.
 */
export function benchEvent(seq: number) {
  return {
    type: 'metric' as const,
    workspaceId: WORKSPACE_ID,
    at: new Date().toISOString(),
    title: `${SEQ_MARKER}${seq}`,
    platform: 'instagram',
    accountId: 'acct-0042',
    metric: 'impressions',
    value: 1000 + seq,
    delta: 17,
    window: '1h',
    series: [120, 131, 128, 140, 152, 149, 160, 171, 168, 180, 191, 205],
    tags: ['campaign:spring-launch', 'region:eu-west', 'source:organic'],
    note: 'Hourly impressions for the spring launch campaign, organic reach only.',
  };
}

/** This process's soft limit of open descriptors (Linux: /proc/self/limits), or undefined. */
export function descriptorLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}
