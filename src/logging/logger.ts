import pino, { type DestinationStream, type Logger } from 'pino';

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

const options = (level: string): pino.LoggerOptions => ({
  level,
  base: { service: 'apikeys' },
  redact: { paths: REDACT, censor: '[redacted]' },
  timestamp: pino.stdTimeFunctions.isoTime,
});

export function createLogger(level: string, o: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    ...options(level),
    transport: o.pretty ? { target: 'pino-pretty', options: { colorize: true, singleLine: true } } : undefined,
  };
  return o.destination ? pino(opts, o.destination) : pino(opts);
}

/** How long a batched line waits at most, and how many bytes of lines a batch holds before it is written at once. */
export interface BatchLimits {
  flushMs: number;
  maxBytes: number;
}

export const ACCESS_LOG_BATCH: BatchLimits = { flushMs: 500, maxBytes: 32 * 1024 };

/**
 * Lines gathered in memory and written to `to` together: one write per batch instead of one per
 * line. A batch is written when it reaches `maxBytes` (so a flood of lines never holds more),
 * `flushMs` after its first line, on flush(), and when the process exits.
 */
class LineBatch implements DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private timer?: NodeJS.Timeout;
  private readonly onExit = () => this.flush();

  constructor(
    private readonly to: DestinationStream,
    private readonly limits: BatchLimits,
  ) {
    process.on('exit', this.onExit);
  }

  write(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= this.limits.maxBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.limits.flushMs).unref();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const out = this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    this.to.write(out);
  }

  close(): void {
    this.flush();
    process.off('exit', this.onExit);
  }
}

export interface BatchedLogger {
  /** Writes what `logger` would, where it would, in batches. */
  logger: Logger;
  /** Writes what is gathered and stops: call when the lines' source has stopped. */
  close(): void;
}

/**
 * A logger for lines that need not be written one by one as they come: the lines `logger` would
 * write (same level, fields and redaction), to its destination, in batches (LineBatch). The access
 * log's sampled lines go through one: each line written at once cost one system call, ~1–2 µs of
 * every cached VerifyKey on average. Lines that must be seen at once (failures, KeyService calls)
 * stay on `logger`.
 */
export function batchedLogger(logger: Logger, limits: BatchLimits = ACCESS_LOG_BATCH): BatchedLogger {
  const batch = new LineBatch((logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym], limits);
  return { logger: pino(options(logger.level), batch), close: () => batch.close() };
}
