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

/** The bound this test holds a cached key to once storage is gone (VERIFY_REVOCATION_BOUND_MS). */
const BOUND_MS = 1_000;

/**
 * Storage trouble: a cached key is answered from memory only while the change log confirms it;
 * within the revocation bound of the database dying it answers UNAVAILABLE like an uncached one.
 */
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
      VERIFY_REVOCATION_BOUND_MS: String(BOUND_MS),
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

  it('serves a cached key while polls succeed, fails closed within the bound once the database dies, and recovers without a restart', async () => {
    const admin = bearer(await mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
    const service = bearer(verifyToken);
    const verify = (key: string) => clients.verify.verifyKey({ key }, service);
    const cached = (await clients.keys.createKey({ name: 'cached', scopes: ['read'] }, admin)).secret;
    const uncached = (await clients.keys.createKey({ name: 'uncached', scopes: ['read'] }, admin)).secret;
    expect((await verify(cached)).code).toBe(VerifyCode.VERIFY_CODE_VALID);

    // Polls succeed: the key stays cached well past the bound, with no storage read.
    const lookups = app.storage.counters.keyLookups;
    await sleep(2 * BOUND_MS);
    expect((await verify(cached)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
    expect(app.storage.counters.keyLookups).toBe(lookups);

    await db.kill!();
    const killedAt = Date.now();
    // One call every 50 ms for twice the bound, each recorded with when it was sent.
    const calls: Promise<{ sentAt: number; outcome: string }>[] = [];
    while (Date.now() - killedAt < 2 * BOUND_MS) {
      const sentAt = Date.now();
      calls.push(
        verify(cached).then(
          (r) => ({ sentAt, outcome: VerifyCode[r.code] }),
          (err: { code: number }) => ({ sentAt, outcome: status[err.code] }),
        ),
      );
      await sleep(50);
    }
    const outcomes = await Promise.all(calls);
    const late = outcomes.filter((o) => o.sentAt > killedAt + BOUND_MS);
    expect(late.length).toBeGreaterThan(10);
    expect(new Set(late.map((o) => o.outcome))).toEqual(new Set(['UNAVAILABLE']));
    const lastValid = outcomes.filter((o) => o.outcome === 'VERIFY_CODE_VALID').at(-1);
    process.stdout.write(`storage down: last VALID for the cached key sent ${lastValid ? lastValid.sentAt - killedAt : '-'} ms after the kill\n`);

    await expect(verify(uncached)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // Garbage is still answered by the parser alone.
    expect((await verify('nope')).code).toBe(VerifyCode.VERIFY_CODE_MALFORMED);

    await db.restart!();
    const deadline = Date.now() + 15_000;
    const codes = async () => Promise.all([cached, uncached].map((k) => verify(k).then((r) => r.code, () => undefined)));
    let now = await codes();
    while (!now.every((c) => c === VerifyCode.VERIFY_CODE_VALID) && Date.now() < deadline) {
      await sleep(200);
      now = await codes();
    }
    expect(now).toEqual([VerifyCode.VERIFY_CODE_VALID, VerifyCode.VERIFY_CODE_VALID]);
  }, 60_000);
});
