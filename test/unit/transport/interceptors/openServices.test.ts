import { status } from '@grpc/grpc-js';
import { exceptOpenServices } from '../../../../src/transport/interceptors/openServices';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { HEALTH_PATH, headers, serve } from './harness';

describe('exceptOpenServices', () => {
  it('lets health checks pass by the interceptor it wraps, and applies it to everything else', async () => {
    const srv = await serve([exceptOpenServices(serviceInterceptor({ requestIds: () => false }))], () => 'ok');
    try {
      const bad = headers({ 'x-request-id': 'has spaces' });
      expect(await srv.call(bad, { path: HEALTH_PATH })).toMatchObject({ code: status.OK, value: 'ok' });
      expect((await srv.call(undefined, { path: HEALTH_PATH })).trailers.get('x-request-id')).toEqual([]);
      expect(await srv.call(bad)).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST_ID_HEADER' });
    } finally {
      srv.stop();
    }
  });
});
