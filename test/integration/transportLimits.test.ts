import { status } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { rejection } from '../support/calls';
import { decodeStatusDetails, startTestServer, type TestServer } from '../support/server';

/** Message and metadata limits come from configuration and are enforced before any handler runs. */
describe('transport limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('limits', { GRPC_MAX_RECEIVE_MESSAGE_BYTES: '4096', GRPC_MAX_METADATA_BYTES: '2048' });
  });
  afterAll(() => s.stop());

  it('refuses a request message over GRPC_MAX_RECEIVE_MESSAGE_BYTES with RESOURCE_EXHAUSTED, and serves one under it', async () => {
    const admin = await s.admin();
    await expect(
      s.clients.keys.createKey({ name: 'big', scopes: ['read'], metadata: { blob: 'x'.repeat(5000) } }, admin.metadata),
    ).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    const ok = await s.clients.keys.createKey({ name: 'small', scopes: ['read'] }, admin.metadata);
    expect(ok.key!.name).toBe('small');
  });

  it('refuses metadata over GRPC_MAX_METADATA_BYTES with INVALID_ARGUMENT and a field violation, before authentication', async () => {
    // No valid credential needed: the size check runs first.
    const err = await rejection(s.clients.verify.verifyKey({ key: 'x' }, bearer('whatever', { 'x-padding': 'p'.repeat(3000) })));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    const details = decodeStatusDetails(err);
    expect(details.errorInfo).toMatchObject({ reason: 'INVALID_ARGUMENT', metadata: { limit_bytes: '2048' } });
    expect(details.badRequest?.fieldViolations[0]).toMatchObject({ field: 'metadata' });
    // Just under the limit reaches authentication (and fails there, as it should).
    await expect(s.clients.verify.verifyKey({ key: 'x' }, bearer('whatever', { 'x-padding': 'p'.repeat(1000) }))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
  });
});
