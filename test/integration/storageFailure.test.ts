import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { startApp, type RunningApp } from '../../src/app';
import { bearer, connectClients, type ApiKeysClients } from '../../src/client/promiseClient';
import { loadConfig } from '../../src/config/config';
import { mintUserToken } from '../../src/dev/tokens';
import { startEphemeralDatabase, type EphemeralDatabase } from '../../src/devdb/ephemeralDatabase';
import { newId } from '../../src/domain/ids';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { createLogger } from '../../src/logging/logger';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Storage trouble: cached keys keep verifying for the stale window; uncached ones fail closed. */
describe('VerifyKey while the database is down', () => {
  let db: EphemeralDatabase;
  let app: RunningApp;
  let clients: ApiKeysClients;
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const jwtSecret = randomBytes(32).toString('base64url');

  beforeAll(async () => {
    // This test kills its own database server, so it cannot share the suite's.
    db = await startEphemeralDatabase();
    if (!db.kill || !db.restart) throw new Error(`the fault test needs a restartable FerretDB, got ${db.description}`);
    const config = loadConfig({
      GRPC_ADDR: '127.0.0.1:0',
      MONGODB_URI: db.uri,
      MONGODB_DATABASE: 'fault',
      AUTH_JWT_SECRET: jwtSecret,
      VERIFY_TOKENS: verifyToken,
      // Short TTL so the cached key is past it (stale) while the database is down.
      VERIFY_CACHE_TTL_MS: '200',
      VERIFY_STALE_WINDOW_MS: '60000',
      MONGODB_TIMEOUT_MS: '500',
      LOG_LEVEL: 'silent',
      METRICS_ADDR: 'off',
    });
    app = await startApp(config, createLogger('silent'));
    clients = connectClients(`127.0.0.1:${app.port}`);
  }, 60_000);
  afterAll(async () => {
    clients.close();
    await app.stop();
    await db.stop();
  });

  it('keeps a cached key valid, answers UNAVAILABLE for an uncached one, and recovers without a restart', async () => {
    const admin = bearer(await mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
    const service = bearer(verifyToken);
    const cached = (await clients.keys.createKey({ name: 'cached', scopes: ['read'] }, admin)).secret;
    const uncached = (await clients.keys.createKey({ name: 'uncached', scopes: ['read'] }, admin)).secret;
    expect((await clients.verify.verifyKey({ key: cached }, service)).code).toBe(VerifyCode.VERIFY_CODE_VALID);

    await db.kill!();
    await sleep(300); // past the cache TTL: the entry is stale, storage is gone
    expect(await clients.verify.verifyKey({ key: cached }, service)).toMatchObject({ valid: true, code: VerifyCode.VERIFY_CODE_VALID });
    await expect(clients.verify.verifyKey({ key: uncached }, service)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // Garbage is still answered by the parser alone.
    expect((await clients.verify.verifyKey({ key: 'nope' }, service)).code).toBe(VerifyCode.VERIFY_CODE_MALFORMED);

    await db.restart!();
    let code: VerifyCode | undefined;
    const deadline = Date.now() + 15_000;
    while (code !== VerifyCode.VERIFY_CODE_VALID && Date.now() < deadline) {
      code = await clients.verify.verifyKey({ key: uncached }, service).then(
        (r) => r.code,
        () => undefined,
      );
      if (code !== VerifyCode.VERIFY_CODE_VALID) await sleep(200);
    }
    expect(code).toBe(VerifyCode.VERIFY_CODE_VALID);
    expect((await clients.verify.verifyKey({ key: cached }, service)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
  }, 60_000);
});
