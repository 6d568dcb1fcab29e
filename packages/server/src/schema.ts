/**
 * Browser-safe entry: every domain's zod schemas and inferred types, nothing Node-only.
 * `@pulse/client` and `@pulse/react` import from `@pulse/server/schema`.
 */
export * from './auth/auth.schema.js';
export * from './presence/presence.schema.js';
export * from './notifications/notifications.schema.js';
export * from './dashboard/dashboard.schema.js';
export * from './inbox/inbox.schema.js';
export * from './stats/stats.schema.js';
export * from './streams/stream.schema.js';
