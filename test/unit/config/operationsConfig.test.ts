import { ConfigError, loadConfig } from '../../../src/config/config';

/** The operations variables (metrics, health, shutdown, transport limits). */
describe('operations configuration', () => {
  it('has safe defaults', () => {
    const c = loadConfig({});
    expect(c.metricsAddr).toBe('0.0.0.0:9464');
    expect(c.healthCheckIntervalMs).toBe(1000);
    expect(c.shutdownGraceMs).toBe(10_000);
    expect(c.grpc).toEqual({
      maxReceiveMessageBytes: 1024 * 1024,
      maxSendMessageBytes: 4 * 1024 * 1024,
      maxMetadataBytes: 16 * 1024,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      maxConcurrentStreams: 0,
      maxConnectionAgeMs: 0,
      maxConnectionIdleMs: 0,
    });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      METRICS_ADDR: '127.0.0.1:0',
      HEALTH_CHECK_INTERVAL_MS: '250',
      SHUTDOWN_GRACE_MS: '0',
      GRPC_MAX_RECEIVE_MESSAGE_BYTES: '4096',
      GRPC_MAX_SEND_MESSAGE_BYTES: '8192',
      GRPC_MAX_METADATA_BYTES: '2048',
      GRPC_KEEPALIVE_TIME_MS: '30000',
      GRPC_KEEPALIVE_TIMEOUT_MS: '5000',
      GRPC_MAX_CONCURRENT_STREAMS: '500',
      GRPC_MAX_CONNECTION_AGE_MS: '1800000',
      GRPC_MAX_CONNECTION_IDLE_MS: '600000',
    });
    expect(c.metricsAddr).toBe('127.0.0.1:0');
    expect(c.healthCheckIntervalMs).toBe(250);
    expect(c.shutdownGraceMs).toBe(0);
    expect(c.grpc).toEqual({
      maxReceiveMessageBytes: 4096,
      maxSendMessageBytes: 8192,
      maxMetadataBytes: 2048,
      keepaliveTimeMs: 30_000,
      keepaliveTimeoutMs: 5000,
      maxConcurrentStreams: 500,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionIdleMs: 600_000,
    });
  });

  it('METRICS_ADDR=off disables the endpoint; [::]:9464 is accepted', () => {
    expect(loadConfig({ METRICS_ADDR: 'off' }).metricsAddr).toBeNull();
    expect(loadConfig({ METRICS_ADDR: '[::]:9464' }).metricsAddr).toBe('[::]:9464');
  });

  it.each([
    ['METRICS_ADDR', '9464'],
    ['METRICS_ADDR', 'http://0.0.0.0:9464/metrics'],
    ['HEALTH_CHECK_INTERVAL_MS', '0'],
    ['SHUTDOWN_GRACE_MS', '-1'],
    ['GRPC_MAX_METADATA_BYTES', '70000'], // over Node's 64 KiB HTTP/2 header cap
    ['GRPC_MAX_RECEIVE_MESSAGE_BYTES', '10'],
    ['GRPC_KEEPALIVE_TIME_MS', 'soon'],
  ])('rejects %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toContain(name);
    }
  });
});
