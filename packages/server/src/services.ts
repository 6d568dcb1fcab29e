import type { ChannelService } from './channels/channels.service.js';
import type { PulseConfig } from './config.js';
import type { DashboardService } from './dashboard/dashboard.service.js';
import type { ConnectionCounter } from './infra/connection-counter.js';
import type { Bus } from './infra/bus/bus.js';
import type { Hub } from './infra/hub.js';
import type { InboxService } from './inbox/inbox.service.js';
import type { Logger } from './infra/log.js';
import type { PulseMetrics } from './infra/metrics.js';
import type { RateLimiter } from './infra/rate-limit.js';
import type { Store } from './infra/store/db.js';
import type { NotificationService } from './notifications/notifications.service.js';
import type { PresenceService } from './presence/presence.service.js';
import type { StatsService } from './stats/stats.service.js';

/** Everything procedures reach through `ctx.services`; each domain adds its service here. */
export interface PulseServices {
  config: PulseConfig;
  bus: Bus;
  hub: Hub;
  store: Store;
  presence: PresenceService;
  notifications: NotificationService;
  dashboard: DashboardService;
  inbox: InboxService;
  /** The app's channels (`startPulseServer({ channels })`). */
  channels: ChannelService;
  /** Mutation rate limits (trpc.ts middleware). */
  rateLimiter: RateLimiter;
  stats: StatsService;
  metrics: PulseMetrics;
  logger: Logger;
  /** The per-user connection cap's count across nodes (with Redis; one node counts in its transport). */
  connectionCounter?: ConnectionCounter;
}
