import { status } from '@grpc/grpc-js';
import type { CommandStartedEvent } from 'mongodb';
import { bearer } from '../../src/client/promiseClient';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { asServiceError } from '../support/calls';
import { storeKeyCopies } from '../support/keyCopies';
import { decodeStatusDetails, startSecondInstance, startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The bound this test holds a cached key to once storage is gone (VERIFY_REVOCATION_BOUND_MS). */
const BOUND_MS = 1_000;

/**
 * Storage trouble: a cached key is answered from memory only while the change log confirms it;
 * within the revocation bound of the database dying it answers UNAVAILABLE like an uncached one.
 */
describe('VerifyKey while the database is down', () => {
  let s: TestServer;

  beforeAll(async () => {
    // This test kills its own database server, so it cannot share the suite's.
    s = await startTestServer(
      'storage_failure',
      { VERIFY_REVOCATION_BOUND_MS: String(BOUND_MS), MONGODB_TIMEOUT_MS: '500' },
      { ownDatabase: true },
    );
  }, 60_000);
  afterAll(() => s?.stop());

  it('serves a cached key while polls succeed, fails closed within the bound once the database dies, and recovers without a restart', async () => {
    const { app, clients } = s;
    const db = s.database!;
    const { metadata: admin } = await s.admin();
    const service = bearer(s.verifyToken);
    const verify = (key: string) => clients.verify.verifyKey({ key }, service);
    const cached = (await clients.keys.createKey({ name: 'cached', scopes: ['read'] }, admin)).secret;
    const uncached = (await clients.keys.createKey({ name: 'uncached', scopes: ['read'] }, admin)).secret;
    expect((await verify(cached)).code).toBe(VerifyCode.VERIFY_CODE_VALID);

    // Polls succeed: the key stays cached well past the bound, with no storage read.
    const lookups = app.storage.counters.keyLookups;
    await sleep(2 * BOUND_MS);
    expect((await verify(cached)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
    expect(app.storage.counters.keyLookups).toBe(lookups);

    await db.kill();
    const killedAt = Date.now();
    // One call every 50 ms for twice the bound, each recorded with when it was sent.
    const calls: Promise<{ sentAt: number; outcome: string }>[] = [];
    while (Date.now() - killedAt < 2 * BOUND_MS) {
      const sentAt = Date.now();
      calls.push(
        verify(cached).then(
          (r) => ({ sentAt, outcome: VerifyCode[r.code] }),
          (err: unknown) => ({ sentAt, outcome: status[asServiceError(err).code] }),
        ),
      );
      await sleep(50);
    }
    const outcomes = await Promise.all(calls);
    const late = outcomes.filter((o) => o.sentAt > killedAt + BOUND_MS);
    expect(late.length).toBeGreaterThan(10);
    expect(new Set(late.map((o) => o.outcome))).toEqual(new Set(['UNAVAILABLE']));
    const lastValid = outcomes.filter((o) => o.outcome === 'VERIFY_CODE_VALID').at(-1);
    process.stdout.write(
      `storage down: last VALID for the cached key sent ${lastValid ? lastValid.sentAt - killedAt : '-'} ms after the kill\n`,
    );

    await expect(verify(uncached)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // Garbage is still answered by the parser alone.
    expect((await verify('nope')).code).toBe(VerifyCode.VERIFY_CODE_MALFORMED);

    await db.restart();
    const deadline = Date.now() + 15_000;
    const codes = async () =>
      Promise.all(
        [cached, uncached].map((k) =>
          verify(k).then(
            (r) => r.code,
            () => undefined,
          ),
        ),
      );
    let now = await codes();
    while (!now.every((c) => c === VerifyCode.VERIFY_CODE_VALID) && Date.now() < deadline) {
      await sleep(200);
      now = await codes();
    }
    expect(now).toEqual([VerifyCode.VERIFY_CODE_VALID, VerifyCode.VERIFY_CODE_VALID]);
  }, 60_000);
});

/**
 * A database that has fallen behind: every query carries MONGODB_OPERATION_TIMEOUT_MS as
 * maxTimeMS, so the server gives up on it and the caller hears UNAVAILABLE, instead of both
 * working on for a caller that has gone. Here the limit (1 ms) is far below what a scan of a few
 * thousand keys takes on FerretDB; a second instance with the default limit reads the same key.
 */
describe('queries past MONGODB_OPERATION_TIMEOUT_MS', () => {
  let s: TestServer;
  let hurried: TestServer;

  beforeAll(async () => {
    s = await startTestServer('slow_queries');
    hurried = await startSecondInstance(s, { MONGODB_OPERATION_TIMEOUT_MS: '1' });
  }, 60_000);
  afterAll(async () => {
    await hurried?.stop();
    await s?.stop();
  });

  it('a key read that runs past the limit answers UNAVAILABLE (STORAGE_UNAVAILABLE); the same read within it answers VALID', async () => {
    const { metadata: admin, orgId } = await s.admin();
    const created = await s.clients.keys.createKey({ name: 'template', scopes: ['read'] }, admin);
    const model = (await s.collections.keys.findOne({ _id: created.key!.id }))!;
    const secrets = await storeKeyCopies(s.collections.keys, model, 5_000);
    const service = bearer(s.verifyToken);
    const last = secrets[secrets.length - 1];
    const refused = await hurried.clients.verify.verifyKey({ key: last }, service).then(
      () => undefined,
      (err: unknown) => {
        const e = asServiceError(err);
        return { code: e.code, reason: decodeStatusDetails(e).errorInfo?.reason };
      },
    );
    expect(refused).toEqual({ code: status.UNAVAILABLE, reason: 'STORAGE_UNAVAILABLE' });
    // Key management too: a list page is a query like any other.
    const listed = await hurried.clients.keys.listKeys({ pageSize: 10 }, bearer(await s.userToken({ orgId }))).then(
      () => undefined,
      (err: unknown) => asServiceError(err).code,
    );
    expect(listed).toBe(status.UNAVAILABLE);
    expect((await s.clients.verify.verifyKey({ key: last }, service)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
  }, 120_000);

  it("a KeyService call's queries are cut to its deadline; background queries get the full limit", async () => {
    const { metadata: admin } = await s.admin();
    const sent: { command: string; maxTimeMS: unknown }[] = [];
    const record = (e: CommandStartedEvent) => {
      if (e.commandName === 'find') sent.push({ command: `${e.commandName} ${String(e.command.find)}`, maxTimeMS: e.command.maxTimeMS });
    };
    s.app.storage.client.on('commandStarted', record);
    try {
      await s.clients.keys.listKeys({ pageSize: 5 }, admin, { deadline: Date.now() + 3_000 });
      const listing = sent.filter((c) => c.command === 'find api_keys');
      expect(listing).toHaveLength(1);
      expect(listing[0].maxTimeMS).toEqual(expect.any(Number));
      expect(listing[0].maxTimeMS as number).toBeLessThanOrEqual(3_000);
      sent.length = 0;
      await s.clients.keys.listKeys({ pageSize: 5 }, admin); // no deadline: the configured limit
      expect(sent.filter((c) => c.command === 'find api_keys').map((c) => c.maxTimeMS)).toEqual([10_000]);
      // The change-log poll runs for no call: always the configured limit.
      await sleep(1_000);
      expect(new Set(sent.filter((c) => c.command === 'find key_changes').map((c) => c.maxTimeMS))).toEqual(new Set([10_000]));
    } finally {
      s.app.storage.client.off('commandStarted', record);
    }
  });
});
