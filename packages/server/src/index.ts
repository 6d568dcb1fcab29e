/** @pulse/server public API. */
export { type DemoToken, demoUsers, mintDemoTokens } from './auth/demo.js';
export { createTokenVerifier, type MintOptions, mintToken, type TokenVerifier } from './auth/token.js';
export type { DashboardHistoryOptions, DashboardService } from './dashboard/dashboard.service.js';
export type { InboxService, SlaAlert } from './inbox/inbox.service.js';
export { loadConfig, type PulseConfig, type PulseConfigInput, resolveConfig } from './config.js';
export type { Bus, BusMessage } from './infra/bus/bus.js';
export { createMemoryBus } from './infra/bus/memory-bus.js';
export { createRedisBus, type RedisBusOptions } from './infra/bus/redis-bus.js';
export { createRedisClusterBus, type RedisClusterBusOptions } from './infra/bus/redis-cluster-bus.js';
export { Hub } from './infra/hub.js';
export { createStore, type Store } from './infra/store/db.js';
export { CloseCode } from './infra/ws.js';
export type { NotificationSender, SendResult } from './notifications/notifications.service.js';
export {
  type NotificationWebhookBody,
  type NotificationWebhookOptions,
  signWebhook,
  verifyWebhook,
  WEBHOOK_HEADERS,
} from './notifications/notifications.webhook.js';
export type { PresenceBackend } from './presence/presence.backend.js';
export { createRedisPresenceBackend, type RedisPresenceOptions } from './presence/presence.redis.js';
export { createPublisher, type Publisher, type PublisherOptions } from './publisher-process.js';
export {
  createServicePublisher,
  type DashboardBroadcast,
  type KindNotificationOptions,
  type NotificationMessage,
  type ServicePublisher,
} from './publisher.js';
export { type AppRouter, appRouter } from './router.js';
export * from './schema.js';
export {
  createPulseServices,
  type PulseServer,
  type PulseServerOptions,
  type PulseServicesOptions,
  servicePrincipal,
  startPulseServer,
} from './server.js';
export type { PulseServices } from './services.js';
export type { PulseContext } from './trpc.js';
// Issue 15, the app's own domain: its procedures (Pulse's builders and routers), its channels, its
// identity provider (claims mapping), its server (attachPulse). Keep this block contiguous.
export type { ClaimsMapper, MappedClaims, TokenVerifierOptions } from './auth/token.js';
export * from './channels/index.js';
export type { AuthedContext } from './context.js';
export { type AttachedPulse, attachPulse } from './host/attach.js';
export type { PulseRequestHandler } from './infra/http.js';
export * from './kinds.js';
export { createPulseRouter, createPulseRouters, type PulseRouterOptions, pulseRouters } from './router.js';
export { createPulseNode, type PulseApi, type PulseCaller, type PulseNode } from './server.js';
export {
  adminProcedure,
  authedProcedure,
  createCallerFactory,
  memberProcedure,
  middleware,
  publicProcedure,
  router,
  serviceProcedure,
  workspaceInput,
} from './trpc.js';
