import { status } from '@grpc/grpc-js';
import { requestIdSourceOf } from '../../../../src/transport/interceptors/requestId';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { HEALTH_PATH, headers, PATH, serve } from './harness';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  let handled: string[];
  beforeAll(async () => {
    srv = await serve([serviceInterceptor({ requestIds: () => false })], (call) => {
      const id = requestIdSourceOf(call.metadata).requestId();
      handled.push(id);
      if (call.metadata.get('x-fail').length > 0) throw new Error('handler failed');
      return id;
    });
  });
  beforeEach(() => (handled = []));
  afterAll(() => srv.stop());

  const idsOf = (a: { headers?: { get(k: string): unknown[] }; trailers: { get(k: string): unknown[] } }) => ({
    header: a.headers?.get('x-request-id'),
    trailer: a.trailers.get('x-request-id'),
  });

  it('takes a valid id, gives it to the handler and echoes it in headers and trailers', async () => {
    const a = await srv.call(headers({ 'x-request-id': 'req-2026.11:abc_1' }));
    expect(a).toMatchObject({ code: status.OK, value: 'req-2026.11:abc_1' });
    expect(idsOf(a)).toEqual({ header: ['req-2026.11:abc_1'], trailer: ['req-2026.11:abc_1'] });
  });

  it('generates one when none is sent, the same for the handler, headers and trailers', async () => {
    const a = await srv.call();
    expect(a.value).toMatch(UUID);
    expect(idsOf(a)).toEqual({ header: [a.value], trailer: [a.value] });
  });

  it('echoes it on a failed call too', async () => {
    const a = await srv.call(headers({ 'x-request-id': 'fails-1', 'x-fail': 'yes' }));
    expect(a.code).toBe(status.INTERNAL);
    expect(a.trailers.get('x-request-id')).toEqual(['fails-1']);
  });

  it.each([
    ['too long', { 'x-request-id': 'x'.repeat(129) }],
    ['a space', { 'x-request-id': 'has spaces' }],
    ['two values', { 'x-request-id': ['a', 'b'] }],
  ])('refuses one with %s before the handler, answering under a generated id', async (_what, h) => {
    const a = await srv.call(headers(h));
    expect(a).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST_ID_HEADER' });
    expect(a.trailers.get('x-request-id')).toEqual([expect.stringMatching(UUID)]);
    expect(handled).toEqual([]);
  });
});

describe('request ids on a method quiet on success (its successes are sampled by the access log)', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    srv = await serve([serviceInterceptor({ requestIds: (path) => path === PATH })], (call) => {
      if (call.metadata.get('x-fail').length > 0) throw new Error('handler failed');
      return call.metadata.get('x-ask').length > 0 ? requestIdSourceOf(call.metadata).requestId() : 'ok';
    });
  });
  afterAll(() => srv.stop());

  const ids = (a: { headers?: { get(k: string): unknown[] }; trailers: { get(k: string): unknown[] } }) => ({
    header: a.headers?.get('x-request-id'),
    trailer: a.trailers.get('x-request-id'),
  });

  it('sends no id with a successful answer when the caller sent none and nothing asked for one', async () => {
    const a = await srv.call();
    expect(a).toMatchObject({ code: status.OK, value: 'ok' });
    expect(ids(a)).toEqual({ header: [], trailer: [] });
  });

  it('still echoes the caller’s own id in headers and trailers', async () => {
    const a = await srv.call(headers({ 'x-request-id': 'gw-7' }));
    expect(ids(a)).toEqual({ header: ['gw-7'], trailer: ['gw-7'] });
  });

  it('generates one for a failed call, in its trailers', async () => {
    const a = await srv.call(headers({ 'x-fail': 'yes' }));
    expect(a.code).toBe(status.INTERNAL);
    expect(a.trailers.get('x-request-id')).toEqual([expect.stringMatching(UUID)]);
  });

  it('echoes one the handler asked for, the same it was given', async () => {
    const a = await srv.call(headers({ 'x-ask': 'yes' }));
    expect(a.value).toMatch(UUID);
    expect(ids(a)).toEqual({ header: [a.value], trailer: [a.value] });
  });

  it('refuses an invalid one as before, under a generated id', async () => {
    const a = await srv.call(headers({ 'x-request-id': 'has spaces' }));
    expect(a).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST_ID_HEADER' });
    expect(a.trailers.get('x-request-id')).toEqual([expect.stringMatching(UUID)]);
  });

  it('leaves other methods as they were: a generated id in headers and trailers', async () => {
    const a = await srv.call(undefined, { path: HEALTH_PATH });
    expect(a.code).toBe(status.OK);
    expect(ids(a)).toEqual({ header: [expect.stringMatching(UUID)], trailer: a.headers?.get('x-request-id') });
  });
});
