/** `@pulse/server/demo`: what `npm start` runs on top of a Pulse node (demo tokens, static app, traffic). */
export { type DemoToken, demoUsers } from '../auth/demo.js';
export { type DemoTokensResponse, demoTokensRoute, staticFilesRoute } from './demo-routes.js';
export {
  type DemoGenerator,
  type DemoGeneratorOptions,
  type DemoTarget,
  startDemoGenerator,
} from './generator.js';
export { type DemoServer, type DemoServerOptions, startDemoServer } from './demo-server.js';
