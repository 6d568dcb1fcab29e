// A chaos node: `pulse-server` with the app's router (Pulse's routers + the custom durable channel),
// configured from the same environment (startNode's `entry`).
import { loadConfig, startPulseServer } from '@pulse/server';
import { chaosRouter, postsChannel } from './channel.js';

const config = loadConfig();
const server = await startPulseServer({ config, router: chaosRouter, channels: [postsChannel] });
console.log(`Pulse ${config.nodeId} listening on ${server.url}`);
const stop = () => {
  void server.close({ graceMs: 500 }).finally(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
