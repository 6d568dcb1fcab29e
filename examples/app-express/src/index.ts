/** The example app: Pulse extended with its own posts and comments, on Express or Fastify. */
export { type AppRouter, createApp } from './app.js';
export { mapClaims } from './auth.js';
export { commentsChannel } from './comments.js';
export { type ExampleServerOptions, startExpressExample } from './express-server.js';
export { startFastifyExample } from './fastify-server.js';
export { type InvoicePaid, invoicePaid, notificationKinds } from './invoices.js';
export { PostStore, postsRouter } from './posts.js';
