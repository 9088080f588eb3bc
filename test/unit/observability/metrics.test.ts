// Calls are counted in plain numbers and handed to prom-client at scrape time: what a scrape shows.
import { status } from '@grpc/grpc-js';
import { Metrics } from '../../../src/observability/metrics';
import { parseMetrics, sampleValue } from '../../support/prometheus';

const scrape = async (m: Metrics) => parseMetrics(await m.registry.metrics());
const VERIFY = { grpc_service: 'apikeys.v1.VerifyService', grpc_method: 'VerifyKey' };

describe('Metrics: RPC counts', () => {
  it('shows started, in-flight, handled by code name and durations as of the scrape', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const verify = m.method('/apikeys.v1.VerifyService/VerifyKey');
    expect(m.method('/apikeys.v1.VerifyService/VerifyKey')).toBe(verify);
    for (let i = 0; i < 3; i++) m.rpcStarted(verify);
    m.rpcEnded(verify, status.OK, 0.002);
    m.rpcEnded(verify, status.UNAUTHENTICATED, 0.2);
    let s = await scrape(m);
    expect(sampleValue(s, 'grpc_server_started_total', VERIFY)).toBe(3);
    expect(sampleValue(s, 'grpc_server_in_flight')).toBe(1);
    expect(sampleValue(s, 'grpc_server_handled_total', { ...VERIFY, grpc_code: 'OK' })).toBe(1);
    expect(sampleValue(s, 'grpc_server_handled_total', { ...VERIFY, grpc_code: 'UNAUTHENTICATED' })).toBe(1);
    expect(sampleValue(s, 'grpc_server_handling_seconds_count', VERIFY)).toBe(2);
    expect(sampleValue(s, 'grpc_server_handling_seconds_bucket', { ...VERIFY, le: '0.0025' })).toBe(1);

    // Counts keep growing between scrapes; a code without a name is shown as its number.
    m.rpcEnded(verify, 99, 0.001);
    s = await scrape(m);
    expect(sampleValue(s, 'grpc_server_in_flight')).toBe(0);
    expect(sampleValue(s, 'grpc_server_handled_total', { ...VERIFY, grpc_code: 'OK' })).toBe(1);
    expect(sampleValue(s, 'grpc_server_handled_total', { ...VERIFY, grpc_code: '99' })).toBe(1);
    expect(sampleValue(s, 'grpc_server_started_total', VERIFY)).toBe(3);
  });

  it('shows durations as a Prometheus histogram: cumulative buckets (a bound includes itself), +Inf, sum and count', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const verify = m.method('/apikeys.v1.VerifyService/VerifyKey');
    m.method('/apikeys.v1.KeyService/GetKey'); // started, never finished
    for (const seconds of [0.0005, 0.0004, 0.003, 0.01, 12]) m.rpcEnded(verify, status.OK, seconds);
    const s = await scrape(m);
    const bucket = (le: string) => sampleValue(s, 'grpc_server_handling_seconds_bucket', { ...VERIFY, le });
    expect([bucket('0.0005'), bucket('0.001'), bucket('0.005'), bucket('0.01'), bucket('10'), bucket('+Inf')]).toEqual([2, 2, 3, 4, 4, 5]);
    expect(sampleValue(s, 'grpc_server_handling_seconds_sum', VERIFY)).toBeCloseTo(12.0139);
    expect(sampleValue(s, 'grpc_server_handling_seconds_count', VERIFY)).toBe(5);
    expect(s.filter((x) => x.name.startsWith('grpc_server_handling_seconds') && x.labels.grpc_method === 'GetKey')).toEqual([]);
    // One series per method and bound: 14 bounds and +Inf, then sum and count.
    expect(s.filter((x) => x.name.startsWith('grpc_server_handling_seconds'))).toHaveLength(17);
  });

  it('counts VerifyKey results by code, showing only codes that occurred', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.verifyResult('VALID');
    m.verifyResult('VALID');
    m.verifyResult('NOT_FOUND');
    const s = await scrape(m);
    expect(sampleValue(s, 'apikeys_verify_results_total', { code: 'VALID' })).toBe(2);
    expect(sampleValue(s, 'apikeys_verify_results_total', { code: 'NOT_FOUND' })).toBe(1);
    expect(sampleValue(s, 'apikeys_verify_results_total', { code: 'REVOKED' })).toBeUndefined();
  });
});
