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
  /** The other domains' loop (channel, inbox, dashboard): pause between its operations, [min, max] ms. */
  extrasGapMs: [number, number];
  /** Reply SLA of the inbox (the nodes' PULSE_INBOX_SLA_MS). */
  slaMs: number;
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
  | {
      t: 'channel-ack';
      key: string;
      workspaceId: string;
      postId: string;
      id: string;
      created: boolean;
      attempts: number;
    }
  | {
      t: 'inbox-ack';
      op: 'receive' | 'reply';
      key: string;
      workspaceId: string;
      conversationId: string;
      messageId: string;
      eventId: string;
      created: boolean;
      attempts: number;
    }
  | { t: 'dash-ack'; workspaceId: string; valueKey: string; at: string; applied: boolean; attempts: number }
  | { t: 'gaveup'; key: string }
  | { t: 'stopped'; published: number };
