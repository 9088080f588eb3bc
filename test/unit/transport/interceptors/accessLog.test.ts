import { Writable } from 'node:stream';
import { createLogger } from '../../../../src/logging/logger';
import { AccessLog } from '../../../../src/transport/interceptors/accessLog';
import { Authentication } from '../../../../src/transport/interceptors/authentication';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { authenticator, secrets, service } from './callers';
import { headers, PATH, serve } from './harness';

describe('the access log', () => {
  const written: string[] = [];
  const logger = createLogger('info', {
    destination: new Writable({
      write: (chunk, _enc, cb) => {
        written.push(String(chunk));
        cb();
      },
    }),
  });
  const lines = () => written.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'rpc');
  let srv: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    srv = await serve(
      [
        serviceInterceptor({
          accessLog: new AccessLog(logger, () => 1),
          requestIds: () => false,
          authentication: new Authentication(authenticator, logger),
        }),
      ],
      (call) => {
        if (call.metadata.get('x-fail').length > 0) throw new Error('handler failed');
        return 'ok';
      },
    );
  });
  beforeEach(() => (written.length = 0));
  afterAll(() => srv.stop());

  /** One call and its one access-log line, with the request id the client got back. */
  async function logged(md = headers({})) {
    const answer = await srv.call(md);
    expect(lines()).toHaveLength(1);
    return { line: lines()[0], requestId: answer.trailers.get('x-request-id')[0] };
  }

  it('logs an answered call: request id, method, caller, code and duration, no reason', async () => {
    const { line } = await logged(service(2, { 'x-request-id': 'ok-1' }));
    expect(line).toEqual(
      expect.objectContaining({
        requestId: 'ok-1',
        method: PATH,
        callerKind: 'service',
        callerId: 'service:2',
        code: 'OK',
        durationMs: expect.any(Number),
      }),
    );
    expect(line).not.toHaveProperty('reason');
    expect(line).not.toHaveProperty('orgId');
  });

  it('logs a handler’s failure with its code', async () => {
    const { line } = await logged(service(1, { 'x-fail': 'yes' }));
    expect(line).toMatchObject({ code: 'INTERNAL', callerKind: 'service' });
  });

  it('logs refusals by the request id and authentication parts, under the id the client got back', async () => {
    const badId = await logged(service(1, { 'x-request-id': 'has spaces' }));
    expect(badId.line).toMatchObject({
      requestId: badId.requestId,
      code: 'INVALID_ARGUMENT',
      reason: 'INVALID_REQUEST_ID_HEADER',
      callerKind: 'anonymous',
    });
    written.length = 0;
    const noCredential = await logged();
    expect(noCredential.line).toMatchObject({
      requestId: noCredential.requestId,
      code: 'UNAUTHENTICATED',
      reason: 'UNAUTHENTICATED',
      callerKind: 'anonymous',
    });
  });

  it('names a caller refused for its acting-as, with no organization', async () => {
    const { line } = await logged(service(3, { 'x-organization-id': 'org_00000000000000000000000000' }));
    expect(line).toMatchObject({ callerKind: 'service', callerId: 'service:3', code: 'PERMISSION_DENIED', reason: 'ACTING_AS_FORBIDDEN' });
    expect(line).not.toHaveProperty('orgId');
    expect(line).not.toHaveProperty('actingAs');
  });

  it('never logs a credential', async () => {
    await srv.call(service(1));
    await srv.call(headers({ authorization: `Bearer ${secrets[0]}x` }));
    expect(lines().map((l) => l.code)).toEqual(['OK', 'UNAUTHENTICATED']);
    for (const secret of secrets) expect(written.join('')).not.toContain(secret);
  });
});
