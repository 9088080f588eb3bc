import type { Logger } from '../../../src/logging/logger';
import { Metrics } from '../../../src/observability/metrics';
import { StorageHealthMonitor } from '../../../src/observability/storageHealth';
import { parseMetrics, sampleValue } from '../../support/prometheus';

const logger = () => ({ info: jest.fn(), warn: jest.fn() }) as unknown as Logger & { info: jest.Mock; warn: jest.Mock };

/** A ping that answers as the test says, one answer per ping. */
function scriptedPing(answers: boolean[]) {
  return jest.fn(async () => {
    if (!answers.shift()) throw Object.assign(new Error('connection refused'), { name: 'MongoNetworkError' });
  });
}

describe('StorageHealthMonitor', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('reports transitions only, logs each once, and counts every failed ping', async () => {
    const onChange = jest.fn();
    const log = logger();
    const m = new StorageHealthMonitor({
      ping: scriptedPing([true, false, false, false, true, true]),
      intervalMs: 100,
      onChange,
      logger: log,
    });
    m.start();
    expect(m.isReachable).toBe(true);
    await jest.advanceTimersByTimeAsync(200); // up, down
    expect(m.isReachable).toBe(false);
    await jest.advanceTimersByTimeAsync(400); // down, down, up, up
    expect(m.isReachable).toBe(true);
    expect(onChange.mock.calls).toEqual([[false], [true]]);
    expect(m.failedPings).toBe(3);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.info).toHaveBeenCalledTimes(1);
    await m.stop();
  });

  it('once stopped, a ping still in flight changes nothing; stop resolves when it has settled', async () => {
    let fail!: () => void;
    const ping = jest.fn(() => new Promise<void>((_, reject) => (fail = () => reject(new Error('gone')))));
    const onChange = jest.fn();
    const m = new StorageHealthMonitor({ ping, intervalMs: 100, onChange, logger: logger() });
    m.start();
    await jest.advanceTimersByTimeAsync(100);
    expect(ping).toHaveBeenCalledTimes(1);
    let stopped = false;
    const stopping = m.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    fail();
    await stopping;
    expect(onChange).not.toHaveBeenCalled();
    expect(m.isReachable).toBe(true);
    expect(m.failedPings).toBe(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(ping).toHaveBeenCalledTimes(1);
  });

  it('is what apikeys_storage_up and apikeys_storage_ping_failures_total show when scraped', async () => {
    const m = new StorageHealthMonitor({ ping: scriptedPing([false, false]), intervalMs: 100, onChange: () => {}, logger: logger() });
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.observeStorage(m);
    const scrape = async () => parseMetrics(await metrics.registry.metrics());
    expect(sampleValue(await scrape(), 'apikeys_storage_up')).toBe(1);
    expect(sampleValue(await scrape(), 'apikeys_storage_ping_failures_total')).toBe(0);
    m.start();
    await jest.advanceTimersByTimeAsync(200);
    const down = await scrape();
    expect(sampleValue(down, 'apikeys_storage_up')).toBe(0);
    expect(sampleValue(down, 'apikeys_storage_ping_failures_total')).toBe(2);
    await m.stop();
  });
});
