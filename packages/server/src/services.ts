import type { PulseConfig } from './config.js';
import type { Bus } from './infra/bus/bus.js';
import type { DashboardService } from './dashboard/dashboard.service.js';
import type { Hub } from './infra/hub.js';
import type { InboxService } from './inbox/inbox.service.js';
import type { Store } from './infra/store/db.js';
import type { NotificationService } from './notifications/notifications.service.js';
import type { PresenceService } from './presence/presence.service.js';

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
}
