/** @pulse/client: a typed Pulse client for browsers and Node. */
export {
  type ConnectionState,
  type ConnectionStatus,
  createPulseClient,
  fullJitterBackoff,
  type PulseClient,
  type PulseClientOptions,
  type TokenSource,
  type WebSocketConstructor,
} from './createPulseClient.js';
export { canShareConnection, TabGroup, type TabRole } from './tab-leader.js';
export { PulseError, type PulseErrorContext, toPulseError } from './errors.js';
// NOTE: types only. The build inlines these declarations into dist/index.d.ts, so an app gets the
// router's types without installing @pulse/server (a devDependency here, never a runtime one).
/** The Pulse router's type, every procedure's input/output, and every domain's records and events. */
export type * from '@pulse/server/contract';
