/** The durable-stream kernel: one implementation of append, relay, replay and retention for every durable domain. */
export {
  type AppendedEvent,
  DurableStream,
  type DurableStreamSpec,
  defaultEventTable,
  type StreamEventTable,
  type StreamFilter,
} from './durable-stream.js';
export { type StreamFaults, StreamKernel, type StreamKernelOptions } from './stream-kernel.js';
export * from './stream.schema.js';
