import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Store } from '../infra/store/db.js';
import type {
  Notification,
  NotificationPriority,
  NotificationType,
  StoredNotification,
} from './notifications.schema.js';
import type { NotificationTables } from './notifications.tables.js';

/** When a kind escalates: which priorities, after how long unseen. */
export interface EscalationRule {
  priorities: NotificationPriority[];
  /** How long it may stay unseen before the webhook gets it (ms). */
  delayMs: number;
}

/** The outgoing webhook for notifications nobody saw in time (email / push by another system). */
export interface NotificationWebhookOptions {
  /** Where deliveries are POSTed. */
  url: string;
  /** HMAC-SHA256 key of the signature header. */
  secret: string;
  /** Per kind; kinds without a rule never escalate. */
  /** Per kind: Pulse's (`crisis`…) or the app's own (`notificationKinds`). */
  rules: Partial<Record<NotificationType | (string & {}), EscalationRule>>;
  /** How often every node looks for due deliveries (ms, default 1,000; 0 = only `runDue()` calls). */
  pollMs?: number;
  /** Attempts before giving up (default 8). */
  maxAttempts?: number;
  /** Wait before attempt `n + 1` after `n` failed (ms; default 1 s, 2 s, 4 s … capped at 5 min). */
  backoffMs?: (failedAttempts: number) => number;
  /** Per request (ms, default 10,000); the claim lasts this plus a margin. */
  timeoutMs?: number;
}

/** Header names of a delivery. */
export const WEBHOOK_HEADERS = {
  /** `<notificationId>:<recipient>` (recipient `*` = workspace-wide): the same on every retry. */
  id: 'pulse-webhook-id',
  /** Unix time in seconds of this attempt; part of the signed string. */
  timestamp: 'pulse-webhook-timestamp',
  /** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` */
  signature: 'pulse-webhook-signature',
  /** 1 for the first attempt. */
  attempt: 'pulse-webhook-attempt',
} as const;

/** The JSON body of a delivery. */
export interface NotificationWebhookBody {
  type: 'notification.unseen';
  /** Same as the id header: deduplicate on it. */
  id: string;
  workspaceId: string;
  /** The user who has not seen it, or null for a workspace-wide one nobody has seen. */
  userId: string | null;
  notification: Notification | StoredNotification;
  /** The kind's configured delay: how long it stayed unseen before it was due (ms). */
  delayMs: number;
}

/** The signature header value for one attempt. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Checks a received delivery: the signature over `timestamp.body` (constant-time) and a timestamp
 * no older than `toleranceSeconds` (default 300), so a captured request cannot be replayed later.
 * Pass the raw body exactly as received.
 */
export function verifyWebhook(opts: {
  secret: string;
  body: string;
  timestamp: string | undefined;
  signature: string | undefined;
  toleranceSeconds?: number;
  nowSeconds?: number;
}): boolean {
  const { timestamp, signature } = opts;
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(opts.secret, timestamp, opts.body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The delay a new notification escalates after (ms), or null when its kind and priority do not. */
export function escalationDelayOf(
  rules: NotificationWebhookOptions['rules'],
): (notification: Pick<StoredNotification, 'type' | 'priority'>) => number | null {
  return (notification) => {
    const rule = rules[notification.type];
    return rule?.priorities.includes(notification.priority) ? rule.delayMs : null;
  };
}

const defaultBackoff = (failed: number) => Math.min(300_000, 1_000 * 2 ** Math.max(0, failed - 1));

/** What one `runDue` pass did (tests and logs). */
export interface WebhookRun {
  delivered: string[];
  /** Seen in time: never sent. */
  cancelled: string[];
  /** Failed this time, retried later. */
  retrying: string[];
  /** Failed the last attempt. */
  gaveUp: string[];
}

/**
 * Hands notifications that stayed unseen past their kind's delay to the outgoing webhook. Rows in
 * `pulse_notification_webhooks` are written by `send` in the notification's own transaction; every
 * node polls for due ones and claims each with a conditional UPDATE (as inbox SLA escalations are),
 * so one node at a time sends a delivery. A delivery seen before it is sent is cancelled instead.
 *
 * NOTE: exactly once as far as the store can make it: a node that dies after the receiver got the
 * request but before it recorded the delivery leaves it to be retried once its claim expires, so
 * receivers deduplicate on the id header (the same on every attempt).
 */
export class NotificationWebhook {
  private readonly db: Kysely<NotificationTables>;
  private readonly poller: NodeJS.Timeout | undefined;
  private running: Promise<WebhookRun> | null = null;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: (failed: number) => number;

  constructor(
    private readonly opts: {
      store: Store;
      nodeId: string;
      webhook: NotificationWebhookOptions;
      onError?: (error: unknown, context: string) => void;
    },
  ) {
    this.db = opts.store.db.withTables<NotificationTables>();
    this.timeoutMs = opts.webhook.timeoutMs ?? 10_000;
    this.maxAttempts = opts.webhook.maxAttempts ?? 8;
    this.backoffMs = opts.webhook.backoffMs ?? defaultBackoff;
    const pollMs = opts.webhook.pollMs ?? 1_000;
    if (pollMs > 0) {
      this.poller = setInterval(() => {
        if (this.running || this.closed) return;
        void this.runDue().catch((error: unknown) => opts.onError?.(error, 'notification webhook'));
      }, pollMs);
      this.poller.unref();
    }
  }

  /** The delay of a new notification (see `escalationDelayOf`). */
  readonly delayOf = (notification: Pick<StoredNotification, 'type' | 'priority'>) =>
    escalationDelayOf(this.opts.webhook.rules)(notification);

  /**
   * Sends every delivery due at `now` that this node can claim (the poller calls it; tests call it
   * with a chosen clock). One pass at a time per node.
   */
  runDue(now = Date.now()): Promise<WebhookRun> {
    if (this.running) return this.running.then(() => this.runDue(now));
    this.running = this.pass(now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Stops polling after the pass under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    await this.running?.catch(() => undefined);
  }

  private async pass(now: number): Promise<WebhookRun> {
    const run: WebhookRun = { delivered: [], cancelled: [], retrying: [], gaveUp: [] };
    const due = await this.db
      .selectFrom('pulse_notification_webhooks')
      .select(['notification_id', 'recipient'])
      .where('delivered_at', 'is', null)
      .where('cancelled_at', 'is', null)
      .where('due_at', '<=', now)
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
      .orderBy('due_at')
      .limit(100)
      .execute();
    for (const row of due) {
      if (this.closed) break;
      await this.deliver(row.notification_id, row.recipient, now, run).catch((error: unknown) =>
        this.opts.onError?.(error, 'notification webhook delivery'),
      );
    }
    return run;
  }

  private async deliver(notificationId: string, recipient: string, now: number, run: WebhookRun) {
    const key = `${notificationId}:${recipient}`;
    // NOTE: the claim. Another node's live claim, a delivery or a cancellation make it touch no row.
    const claimed = await this.db
      .updateTable('pulse_notification_webhooks')
      .set((eb) => ({
        claimed_by: this.opts.nodeId,
        claimed_until: now + this.timeoutMs + 5_000,
        attempts: eb('attempts', '+', 1),
      }))
      .where('notification_id', '=', notificationId)
      .where('recipient', '=', recipient)
      .where('delivered_at', 'is', null)
      .where('cancelled_at', 'is', null)
      .where('due_at', '<=', now)
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
      .returning(['attempts', 'due_at', 'workspace_id'])
      .executeTakeFirst();
    if (!claimed) return;
    const mine = (query: ReturnType<typeof this.openRow>) => query.where('claimed_by', '=', this.opts.nodeId);

    const notification = await this.db
      .selectFrom('pulse_notifications')
      .selectAll()
      .where('id', '=', notificationId)
      .executeTakeFirst();
    const seen = await this.db
      .selectFrom('pulse_notification_states')
      .select('user_id')
      .where('notification_id', '=', notificationId)
      .where('seen_at', 'is not', null)
      .$if(recipient !== '*', (q) => q.where('user_id', '=', recipient))
      .executeTakeFirst();
    if (!notification || seen) {
      await mine(this.openRow(notificationId, recipient))
        .set({ cancelled_at: new Date(now).toISOString(), claimed_until: null, last_error: null })
        .execute();
      run.cancelled.push(key);
      return;
    }

    const attempt = Number(claimed.attempts);
    const body = JSON.stringify({
      type: 'notification.unseen',
      id: key,
      workspaceId: notification.workspace_id,
      userId: recipient === '*' ? null : recipient,
      notification: {
        id: notification.id,
        workspaceId: notification.workspace_id,
        userId: notification.user_id,
        type: notification.type,
        title: notification.title,
        body: notification.body,
        priority: notification.priority,
        data: JSON.parse(notification.data),
        createdAt: notification.created_at,
        eventId: String(notification.seq),
      },
      // NOTE: from the rule, not `due_at` (which retries move): the body is the same on every attempt.
      delayMs:
        this.delayOf({
          type: notification.type as NotificationType,
          priority: notification.priority as NotificationPriority,
        }) ?? 0,
    } as NotificationWebhookBody);
    const timestamp = String(Math.floor(Date.now() / 1000));
    let failure: string | null = null;
    try {
      const response = await fetch(this.opts.webhook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [WEBHOOK_HEADERS.id]: key,
          [WEBHOOK_HEADERS.timestamp]: timestamp,
          [WEBHOOK_HEADERS.signature]: signWebhook(this.opts.webhook.secret, timestamp, body),
          [WEBHOOK_HEADERS.attempt]: String(attempt),
        },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) failure = `HTTP ${response.status}`;
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    if (failure === null) {
      await mine(this.openRow(notificationId, recipient))
        .set({ delivered_at: new Date().toISOString(), claimed_until: null, last_error: null })
        .execute();
      run.delivered.push(key);
      return;
    }
    if (attempt >= this.maxAttempts) {
      await mine(this.openRow(notificationId, recipient))
        .set({ cancelled_at: new Date().toISOString(), claimed_until: null, last_error: failure })
        .execute();
      run.gaveUp.push(key);
      return;
    }
    await mine(this.openRow(notificationId, recipient))
      .set({
        due_at: now + this.backoffMs(attempt),
        claimed_by: null,
        claimed_until: null,
        last_error: failure.slice(0, 500),
      })
      .execute();
    run.retrying.push(key);
  }

  private openRow(notificationId: string, recipient: string) {
    return this.db
      .updateTable('pulse_notification_webhooks')
      .where('notification_id', '=', notificationId)
      .where('recipient', '=', recipient)
      .where('delivered_at', 'is', null)
      .where('cancelled_at', 'is', null);
  }
}
