import { Metadata, status } from '@grpc/grpc-js';
import { Metrics } from '../../../../src/observability/metrics';
import { metadataBytes, metadataLimitInterceptor } from '../../../../src/transport/interceptors/metadataLimit';
import { decodeStatusDetails } from '../../../../src/client/statusDetails';
import { parseMetrics, sampleValue } from '../../../support/prometheus';
import { headers, serve } from './harness';

describe('metadataBytes', () => {
  /** The same count over what goes on the wire: grpc-js's own HTTP/2 header form of the metadata. */
  function onTheWire(md: Metadata): number {
    let n = 0;
    for (const [key, values] of Object.entries(md.toHttp2Headers())) {
      for (const v of [values].flat()) n += key.length + String(v).length + 32;
    }
    return n;
  }

  it('counts name + value + 32 per entry, repeated values each, binary values base64-encoded with padding', () => {
    const md = headers({ authorization: 'Bearer abc', 'x-many': ['a', 'bb', 'ccc'] });
    for (let len = 0; len <= 7; len++) md.add('x-blob-bin', Buffer.alloc(len, 0xff));
    expect(metadataBytes(md)).toBe(onTheWire(md));
    expect(metadataBytes(headers({ a: 'bc' }))).toBe(1 + 2 + 32);
    expect(metadataBytes(new Metadata())).toBe(0);
  });
});

describe('metadataLimitInterceptor', () => {
  it('refuses metadata over the limit with INVALID_ARGUMENT before the handler, counts it, and passes metadata at the limit', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let seen = 0;
    // The limit is set from what this client's calls weigh, so the boundary is exact.
    const probe = await serve([], (call) => metadataBytes(call.metadata));
    const weight = (await probe.call(headers({ 'x-padding': 'p'.repeat(100) }))).value as number;
    probe.stop();

    const srv = await serve([metadataLimitInterceptor(weight, metrics)], () => ++seen);
    try {
      expect(await srv.call(headers({ 'x-padding': 'p'.repeat(100) }))).toMatchObject({ code: status.OK, value: 1 });
      const refused = await srv.call(headers({ 'x-padding': 'p'.repeat(101) }));
      expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
      const details = decodeStatusDetails({ metadata: refused.trailers });
      expect(details.errorInfo?.metadata).toEqual({ limit_bytes: String(weight) });
      expect(details.badRequest?.fieldViolations[0]).toMatchObject({ field: 'metadata', reason: 'INVALID_ARGUMENT' });
      expect(refused.details).toBe(`request metadata is ${weight + 1} bytes; this server accepts at most ${weight}`);
      expect(seen).toBe(1);
      expect(sampleValue(parseMetrics(await metrics.registry.metrics()), 'apikeys_grpc_metadata_rejected_total')).toBe(1);
    } finally {
      srv.stop();
    }
  });
});
