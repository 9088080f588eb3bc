import { status } from '@grpc/grpc-js';
import { once } from 'node:events';
import { Metrics } from '../../../../src/observability/metrics';
import { metadataLimitInterceptor } from '../../../../src/transport/interceptors/metadataLimit';
import { metricsInterceptor } from '../../../../src/transport/interceptors/metrics';
import { parseMetrics, sampleValue } from '../../../support/prometheus';
import { rawConnection } from '../../../support/rawGrpc';
import { HEALTH_PATH, headers, serve } from './harness';

describe('metricsInterceptor', () => {
  it('counts every call by its final status: answers, inner refusals, cancellations, deadlines, health checks', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let entered: () => void = () => {};
    const srv = await serve([metricsInterceptor(metrics), metadataLimitInterceptor(4096)], async (call) => {
      if (call.metadata.get('x-wait').length === 0) return 'ok';
      entered();
      await once(call, 'cancelled');
      return 'late';
    });
    const inHandler = () => new Promise<void>((r) => (entered = r));
    const raw = rawConnection(srv.address);
    try {
      expect((await srv.call()).code).toBe(status.OK);
      expect((await srv.call(undefined, { path: HEALTH_PATH })).code).toBe(status.OK);
      expect((await srv.call(headers({ 'x-padding': 'p'.repeat(5000) }))).code).toBe(status.INVALID_ARGUMENT);
      const reached = inHandler();
      const cancelled = srv.start(headers({ 'x-wait': 'yes' }));
      await reached;
      cancelled.cancel();
      expect((await cancelled.answer).code).toBe(status.CANCELLED);
      // A raw client, so the server's deadline ends the call rather than the client's own timer.
      const late = await raw.call('/test.Echo/Call', new Uint8Array(), { 'x-wait': 'yes', 'grpc-timeout': '100m' });
      expect(late.code).toBe(status.DEADLINE_EXCEEDED);
      // grpc-js reports the end of a cancelled call to the server on a later turn (up to 5 s on a busy machine).
      let m = parseMetrics(await metrics.registry.metrics());
      for (let i = 0; i < 250 && sampleValue(m, 'grpc_server_in_flight') !== 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        m = parseMetrics(await metrics.registry.metrics());
      }

      const handled = (service: string, method: string, code: string) =>
        sampleValue(m, 'grpc_server_handled_total', { grpc_service: service, grpc_method: method, grpc_code: code });
      expect(handled('test.Echo', 'Call', 'OK')).toBe(1);
      expect(handled('test.Echo', 'Call', 'INVALID_ARGUMENT')).toBe(1);
      expect(handled('test.Echo', 'Call', 'CANCELLED')).toBe(1);
      expect(handled('test.Echo', 'Call', 'DEADLINE_EXCEEDED')).toBe(1);
      expect(handled('grpc.health.v1.Health', 'Check', 'OK')).toBe(1);
      expect(sampleValue(m, 'grpc_server_started_total', { grpc_service: 'test.Echo', grpc_method: 'Call' })).toBe(4);
      expect(sampleValue(m, 'grpc_server_handling_seconds_count', { grpc_service: 'test.Echo', grpc_method: 'Call' })).toBe(4);
      expect(sampleValue(m, 'grpc_server_in_flight')).toBe(0);
    } finally {
      raw.close();
      srv.stop();
    }
  });
});
