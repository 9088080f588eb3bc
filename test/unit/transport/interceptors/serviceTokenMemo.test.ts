// The authentication interceptor remembers accepted service tokens by their exact header; nothing
// else is remembered, and what a caller gets back does not change.
import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { Authenticator } from '../../../../src/domain/authentication';
import type { Verifier } from '../../../../src/domain/verification';
import type { Logger } from '../../../../src/logging/logger';
import { contextOf } from '../../../../src/transport/callContext';
import { Authentication } from '../../../../src/transport/interceptors/authentication';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { headers, serve } from './harness';

const token = `vt_${randomBytes(24).toString('base64url')}`;
const other = `vt_${randomBytes(24).toString('base64url')}`;

async function setUp() {
  const verify = jest.fn(async () => ({ code: 'NOT_FOUND' }));
  const authenticator = new Authenticator(
    { keyPrefix: 'sk', jwtMaxAgeSeconds: 86_400, verifyTokens: [other, token], staffEmailDomains: [] },
    { verify } as unknown as Verifier,
  );
  const principalOf = jest.spyOn(authenticator, 'principalOf');
  const logger = { error: () => {}, warn: () => {} } as unknown as Logger;
  const srv = await serve(
    [serviceInterceptor({ requestIds: () => false, authentication: new Authentication(authenticator, logger) })],
    (call) => {
      const ctx = contextOf(call);
      return { caller: ctx.principal.id, orgId: ctx.orgId };
    },
  );
  return { srv, principalOf, verify };
}

describe('authentication: service callers', () => {
  it('authenticates a service token once, then admits its exact header as that service', async () => {
    const { srv, principalOf } = await setUp();
    try {
      for (let i = 0; i < 3; i++) {
        expect(await srv.call(headers({ authorization: `Bearer ${token}` }))).toMatchObject({
          code: status.OK,
          value: { caller: 'service:2', orgId: '' },
        });
      }
      expect(principalOf).toHaveBeenCalledTimes(1);
      // Another spelling of the same token is another header: authenticated on its own.
      expect(await srv.call(headers({ authorization: `bearer ${token}` }))).toMatchObject({ value: { caller: 'service:2' } });
      expect(principalOf).toHaveBeenCalledTimes(2);
    } finally {
      srv.stop();
    }
  });

  it('remembers nothing it refused: a wrong or truncated token is refused every time', async () => {
    const { srv, principalOf } = await setUp();
    try {
      for (const wrong of [`vt_${randomBytes(24).toString('base64url')}`, token.slice(0, -1), `${token}x`, `${token}x`]) {
        expect(await srv.call(headers({ authorization: `Bearer ${wrong}` }))).toMatchObject({
          code: status.UNAUTHENTICATED,
          reason: 'INVALID_TOKEN',
        });
      }
      expect(principalOf).toHaveBeenCalledTimes(4);
    } finally {
      srv.stop();
    }
  });

  it('applies the same rules to a remembered header sent with more credentials or headers', async () => {
    const { srv, verify } = await setUp();
    try {
      const service = { authorization: `Bearer ${token}` };
      expect((await srv.call(headers(service))).code).toBe(status.OK);
      // Two credentials: refused, as before it was remembered.
      expect(await srv.call(headers({ ...service, 'x-api-key': 'sk_live_whatever' }))).toMatchObject({ reason: 'UNAUTHENTICATED' });
      expect(verify).not.toHaveBeenCalled();
      // A service may not act on an organization.
      const acting = await srv.call(headers({ ...service, 'x-organization-id': 'org_01hzzzzzzzzzzzzzzzzzzzzzzz' }));
      expect(acting).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'ACTING_AS_FORBIDDEN' });
    } finally {
      srv.stop();
    }
  });
});
