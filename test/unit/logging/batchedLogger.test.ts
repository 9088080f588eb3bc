// Batched log lines (the access log's sampled ones): written together on a timer, at a size
// bound, on close and at exit; the same lines the logger itself would write.
import { Writable } from 'node:stream';
import { batchedLogger, createLogger } from '../../../src/logging/logger';

function capture() {
  const writes: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      writes.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger('info', { destination: sink });
  const lines = () => writes.join('').split('\n').filter(Boolean);
  return { logger, writes, lines };
}

describe('batchedLogger', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('writes the lines gathered in one write when the timer fires, none before', () => {
    const { logger, writes, lines } = capture();
    const batched = batchedLogger(logger, { flushMs: 500, maxBytes: 64 * 1024 });
    batched.logger.info({ n: 1 }, 'rpc');
    batched.logger.info({ n: 2 }, 'rpc');
    expect(writes).toEqual([]);
    jest.advanceTimersByTime(500);
    expect(writes).toHaveLength(1);
    expect(lines().map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([1, 2]);
    batched.close();
  });

  it('writes the same line as the logger, redaction and level included', () => {
    const { logger, writes } = capture();
    const batched = batchedLogger(logger);
    batched.logger.debug('below the level');
    batched.logger.info({ key: 'sk_live_secret', method: '/m' }, 'rpc');
    batched.close();
    logger.info({ key: 'sk_live_secret', method: '/m' }, 'rpc');
    const [fromBatch, direct] = writes.map((w) => JSON.parse(w) as Record<string, unknown>);
    expect({ ...fromBatch, time: undefined }).toEqual({ ...direct, time: undefined });
    expect(fromBatch).toMatchObject({ key: '[redacted]', service: 'apikeys', msg: 'rpc' });
    expect(writes.join('')).not.toContain('sk_live_secret');
  });

  it('holds at most maxBytes under a flood: a full batch is written at once, without waiting for the timer', () => {
    const { logger, writes, lines } = capture();
    const maxBytes = 2_000;
    const batched = batchedLogger(logger, { flushMs: 60_000, maxBytes });
    let mostUnwritten = 0;
    for (let i = 0; i < 1_000; i++) {
      batched.logger.info({ i }, 'rpc');
      mostUnwritten = Math.max(mostUnwritten, i + 1 - lines().length);
    }
    const shortestLine = Math.min(...lines().map((l) => l.length + 1));
    expect(mostUnwritten).toBeLessThanOrEqual(Math.ceil(maxBytes / shortestLine));
    expect(writes.length).toBeGreaterThanOrEqual(Math.floor((1_000 * shortestLine) / (maxBytes + shortestLine * 2)));
    batched.close();
    expect(lines()).toHaveLength(1_000);
  });

  it('close() writes what is gathered (shutdown), and the process exit does too', () => {
    const { logger, lines } = capture();
    const listeners = process.listenerCount('exit');
    const first = batchedLogger(logger);
    const second = batchedLogger(logger);
    expect(process.listenerCount('exit')).toBe(listeners + 2);
    first.logger.info({ which: 'closed' }, 'rpc');
    first.close();
    expect(lines()).toHaveLength(1);
    expect(process.listenerCount('exit')).toBe(listeners + 1);
    second.logger.info({ which: 'at exit' }, 'rpc');
    process.emit('exit', 0);
    expect(lines().map((l) => (JSON.parse(l) as { which: string }).which)).toEqual(['closed', 'at exit']);
    second.close();
    expect(process.listenerCount('exit')).toBe(listeners);
  });
});
