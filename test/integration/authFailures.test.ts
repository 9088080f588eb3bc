import { status } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { generateSecret } from '../../src/domain/keyFormat';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { decodeStatusDetails } from '../../src/client/statusDetails';
import { failure, rejection } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';

const LIMIT = 5;
const WINDOW_MS = 60_000;

/** Guessing API keys from one address is slowed down; other callers from it, and gateways' VerifyKey traffic, are not. */
describe('failed API-key authentications per peer', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('auth_failures', { AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: String(WINDOW_MS) });
  });
  afterAll(() => s.stop());

  it(`after ${LIMIT} failures the peer gets RESOURCE_EXHAUSTED without its key being looked up`, async () => {
    const admin = await s.admin();
    const { secret } = await s.clients.keys.createKey({ name: 'good', scopes: ['read'] }, admin.metadata);
    const service = bearer(s.verifyToken);

    // VerifyKey answers about the presented key are not authentication failures of the caller.
    for (let i = 0; i < 2 * LIMIT; i++) {
      expect((await s.clients.verify.verifyKey({ key: generateSecret('sk', 'live') }, service)).code).toBe(
        VerifyCode.VERIFY_CODE_NOT_FOUND,
      );
    }

    for (let i = 0; i < LIMIT; i++) {
      const f = await failure(s.clients.keys.listKeys({}, bearer(generateSecret('sk', 'live'))));
      expect(f).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'INVALID_API_KEY' });
    }

    const lookups = s.app.storage.counters.keyLookups;
    for (const key of [generateSecret('sk', 'live'), secret]) {
      const err = await rejection(s.clients.keys.listKeys({}, bearer(key)));
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      const info = decodeStatusDetails(err).errorInfo!;
      expect(info.reason).toBe('TOO_MANY_FAILED_AUTHENTICATIONS');
      expect(Number(info.metadata.retry_after_ms)).toBeGreaterThan(0);
      expect(Number(info.metadata.retry_after_ms)).toBeLessThanOrEqual(WINDOW_MS);
    }
    expect(s.app.storage.counters.keyLookups).toBe(lookups); // not even looked up

    // The same address with another kind of credential is not affected.
    await expect(s.clients.keys.listKeys({}, admin.metadata)).resolves.toBeDefined();
    expect((await s.clients.verify.verifyKey({ key: secret }, service)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
  });
});
