/** What the runner and its publisher processes say to each other (IPC). */
export interface WorkspaceSpec {
  id: string;
  users: string[];
}

export interface WorkerConfig {
  workerId: string;
  seed: number;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  retention: number;
  workspaces: WorkspaceSpec[];
  /** Pause between publishes, [min, max] ms. */
  gapMs: [number, number];
  maxPublishes: number;
  maxAttempts: number;
}

export type RunnerMessage = { t: 'stop' } | { t: 'barrier'; workspaceId: string };

export type PublisherMessage =
  | {
      t: 'ack';
      key: string;
      workspaceId: string;
      userId: string | null;
      notificationId: string;
      eventId: string;
      created: boolean;
      attempts: number;
      barrier: boolean;
    }
  | { t: 'retry'; key: string; attempt: number; error: string }
  | { t: 'gaveup'; key: string }
  | { t: 'stopped'; published: number };
