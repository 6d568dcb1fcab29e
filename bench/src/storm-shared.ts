/** IPC messages of the reconnect-storm bench (runner <-> node, publisher and client processes). */

/** Marker in each published event's title: `storm#<seq>`. */
export const STORM_MARKER = 'storm#';

export type StormServerKind = 'pulse' | 'socketio';

export interface StormNodeOptions {
  kind: StormServerKind;
  port: number;
  nodeId: string;
  /** Pulse: PostgreSQL URL, Redis URL and key prefix shared by the nodes and the publisher. */
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
  workspaceId: string;
}

export type NodeCommand =
  | { cmd: 'drain'; graceMs: number }
  /** Socket.IO only: emit event `seq` to the workspace room. */
  | { cmd: 'publish'; seq: number }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

export type NodeReply =
  | { type: 'ready'; port: number }
  | { type: 'drained'; ms: number }
  | { type: 'emitted'; seq: number }
  | { type: 'stats'; connections: number; subscriptions: number }
  | { type: 'error'; message: string };

export interface StormPublisherOptions {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  workspaceId: string;
  /** Notifications per second. */
  rate: number;
}

export type PublisherCommand = { cmd: 'start' } | { cmd: 'finish' } | { cmd: 'stop' };
export type PublisherReply =
  | { type: 'ready' }
  /** After `finish`: seqs 1..last were attempted; `failed` lists those whose send threw. */
  | { type: 'finished'; last: number; failed: number[]; skipped: number }
  | { type: 'error'; message: string };

export interface StormClientOptions {
  protocol: 'trpc' | 'socketio';
  /** Node URLs (ws://host:port/path), tried in order like `url: [A, B]`. */
  urls: string[];
  count: number;
  /** First client number of this process (user ids stay distinct across processes). */
  offset: number;
  workspaceId: string;
  secret?: string;
  /** Highest seq the counters can hold. */
  maxSeq: number;
  /**
   * Abandon a Pulse open after this long, as @pulse/client's `openTimeoutMs` does (default 10 s, as
   * the client's; `STORM_PULSE_OPEN_TIMEOUT_MS`, 0 = never, as tRPC's bare wsClient).
   */
  pulseOpenTimeoutMs?: number;
}

export type ClientCommand =
  /** From now on, a close or reconnect notice is the storm's disconnect. */
  | { cmd: 'arm' }
  /** Per-client figures; `published` are the seqs every client should have seen. */
  | { cmd: 'report'; published: number[] }
  | { cmd: 'progress'; last: number }
  | { cmd: 'stop' };

export type ClientReply =
  | { type: 'ready'; connected: number; failed: number }
  | {
      type: 'progress';
      /** Clients that resumed since `arm` (first event on a new socket). */
      resumed: number;
      /** Clients that have seen every seq up to `last`. */
      complete: number;
      /** Clients currently connected and subscribed. */
      subscribed: number;
    }
  | {
      type: 'report';
      /** Per client: ms from its disconnect to the subscription's `started` on a new socket (-1: never). */
      resubscribeMs: number[];
      /** Per client: ms from its disconnect to its first event on a new socket (-1: never). */
      resumeMs: number[];
      /** Absolute time of the last resume in this process (ms, wall clock). */
      lastResumeAt: number;
      /** Absolute time of the first disconnect in this process. */
      firstDisconnectAt: number;
      disconnected: number;
      lost: number;
      /** Clients that missed at least one event. */
      clientsWithLoss: number;
      duplicated: number;
      /** Sockets opened after `arm` (including failed attempts that reached `open`). */
      reopened: number;
      /** Connection attempts that failed (refused, 503) after `arm`. */
      failedAttempts: number;
      errors: number;
      cpuMicros: number;
    }
  | { type: 'error'; message: string };

/** Wall clock with sub-millisecond resolution, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** About the size of the Pulse notification the publisher sends. */
export function stormEvent(seq: number) {
  return {
    type: 'alert',
    title: `${STORM_MARKER}${seq}`,
    at: new Date().toISOString(),
    body: 'Hourly impressions for the spring launch campaign, organic reach only. campaign:spring-launch region:eu-west',
    data: { alertType: 'system', severity: 'info', message: `impressions ${1000 + seq} (1h)` },
    priority: 'normal',
  };
}
