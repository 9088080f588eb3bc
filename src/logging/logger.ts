import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Paths pino censors wherever they appear in a log object. Handlers never log requests
 * wholesale, but a mistake must not leak a token or a key.
 */
const REDACT = [
  'authorization',
  '*.authorization',
  'x-api-key',
  '*["x-api-key"]',
  'secret',
  '*.secret',
  'key',
  '*.key',
  'token',
  '*.token',
  'metadata.authorization',
];

export function createLogger(level: string, options: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    level,
    base: { service: 'apikeys' },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    transport: options.pretty ? { target: 'pino-pretty', options: { colorize: true, singleLine: true } } : undefined,
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
