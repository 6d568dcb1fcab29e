/**
 * Pulse's WebSocket transport: tRPC's wire protocol (the official `wsLink` talks to it unchanged),
 * with limits the stock adapter lacks, and a fan-out fast path: a subscription that returns a
 * `LiveStream` is attached to the hub directly, and each event is serialised and framed once per
 * distinct subscription id instead of once per socket.
 *
 * Protocol reference: `@trpc/server/src/adapters/ws.ts` (11.19.0); behaviour the wire format
 * leaves open follows it (docs/transport.md lists the deliberate differences).
 *
 * The parts, by job (`infra/ws/`):
 * - `attach.ts`: where sockets come from (HTTP upgrades, or a `WebSocketServer` as the stock adapter);
 * - `connection.ts`: one socket's writes, back-pressure, authentication, expiry, teardown;
 * - `requests.ts`: incoming frames and their limits; `procedures.ts`: running each request;
 * - `live-subscription.ts`: LiveStream delivery straight from the hub; `frames.ts`: frame building;
 * - `transport.ts`: state shared by every socket; `options.ts`: options and limits;
 * - `protocol.ts`: close codes (browser-safe).
 */
export { applyPulseWSSHandler, attachWebSocket } from './ws/attach.js';
export { textFrame } from './ws/frames.js';
export {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_UNAUTHENTICATED_PER_IP,
  DEFAULT_WS_LIMITS,
  type PulseWSSHandlerOptions,
  type WsConnectionInfo,
  type WsErrorInfo,
  type WsHandlerOptions,
  type WsLimits,
  type WsTransport,
  type WsTransportStats,
} from './ws/options.js';
export {
  CLOSE_REASONS,
  CloseCode,
  closeReason,
  MAX_CLOSE_REASON_BYTES,
  type PulseCloseCode,
} from './ws/protocol.js';
