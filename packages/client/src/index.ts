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
export { PulseError, type PulseErrorContext, toPulseError } from './errors.js';
export type { AppRouter } from '@pulse/server';
