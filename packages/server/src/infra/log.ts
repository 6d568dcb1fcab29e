import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths pino blanks out wherever they appear in a log object: tokens never reach a log. */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'connectionParams',
  '*.connectionParams',
  'password',
  '*.password',
];

export interface LoggerOptions {
  level: string;
  nodeId: string;
  /** Where lines go (tests); stdout by default. */
  destination?: NodeJS.WritableStream;
}

/** Structured JSON logs (pino), one line per event, with the node id on every line. */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level,
    base: { nodeId: opts.nodeId },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
