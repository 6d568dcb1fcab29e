import type { PulseConfig } from '../config.js';
import type { Hub } from '../infra/hub.js';
import type { Logger } from '../infra/log.js';
import type { Store } from '../infra/store/db.js';
import type { NotificationService } from '../notifications/notifications.service.js';
import type { StreamKernel } from '../streams/stream-kernel.js';
import { InboxService, type SlaAlert } from './inbox.service.js';

/** The node's inbox: SLA alerts go out as `alert` notifications through the notifications service. */
export function createInboxService(opts: {
  config: PulseConfig;
  hub: Hub;
  store: Store;
  /** The node's durable-stream kernel. */
  streams?: StreamKernel;
  notifications: Pick<NotificationService, 'send'>;
  logger?: Logger;
}): InboxService {
  const { config, notifications, logger } = opts;
  return new InboxService({
    hub: opts.hub,
    store: opts.store,
    streams: opts.streams,
    slaMs: config.inbox.slaMs,
    slaPollMs: config.inbox.slaPollMs,
    retention: config.inbox.retention,
    alert: async (alert) => {
      await notifications.send('system', slaNotification(alert));
    },
    onError: (error) => logger?.error({ err: error }, 'inbox SLA escalation failed'),
  });
}

/** The `alert` notification of an SLA breach: to the assignee, or workspace-wide when unassigned. */
export function slaNotification(alert: SlaAlert) {
  const { conversation } = alert;
  const who = conversation.contact.handle ?? conversation.contact.name;
  const minutes = Math.max(1, Math.round(alert.slaMs / 60_000));
  return {
    workspaceId: alert.workspaceId,
    ...(alert.userId ? { userId: alert.userId } : {}),
    type: 'alert' as const,
    title: `Reply overdue: ${who} on ${conversation.platform}`.slice(0, 200),
    body: `An inbound message has waited longer than the ${minutes} min SLA.`,
    priority: 'high' as const,
    idempotencyKey: alert.idempotencyKey,
    data: {
      alertType: 'sla' as const,
      severity: 'warning' as const,
      message: `Conversation with ${who} (${conversation.platform}) breached its reply SLA`.slice(0, 2000),
      conversationId: conversation.id,
    },
  };
}
