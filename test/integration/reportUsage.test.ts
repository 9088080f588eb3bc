import { status, type Metadata } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FLUSH_MS = 200;

/** ReportUsage against the real server: who may call it, what it refuses, and what it writes. */
describe('ReportUsage', () => {
  let s: TestServer;
  let admin: Metadata;
  let service: Metadata;

  beforeAll(async () => {
    s = await startTestServer('report_usage', { USAGE_FLUSH_INTERVAL_MS: String(FLUSH_MS) });
    admin = (await s.admin()).metadata;
    service = bearer(s.verifyToken);
  });
  afterAll(() => s?.stop());

  const create = async () => {
    const { key, secret } = await s.clients.keys.createKey({ name: 'reported', scopes: ['read', 'write'] }, admin);
    return { id: key!.id, secret };
  };
  /**
   * Returns once a usage flush has run after everything reported so far: a use of a key of its
   * own, reported now, is in storage.
   */
  let sentinel: string | undefined;
  const flushed = async () => {
    sentinel ??= (await create()).id;
    const at = new Date();
    await s.clients.verify.reportUsage({ entries: [{ keyId: sentinel, count: 1, lastUsedTime: at }] }, service);
    while (((await s.collections.lastUsed.findOne({ _id: sentinel }))?.last_used_at.getTime() ?? 0) < at.getTime())
      await sleep(FLUSH_MS / 2);
  };

  it('is for service credentials only: users and API keys are refused, and what they sent is not recorded', async () => {
    const key = await create();
    const entries = [{ keyId: key.id, count: 3, lastUsedTime: new Date() }];
    expect(await failure(s.clients.verify.reportUsage({ entries }, admin))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'PERMISSION_DENIED',
    });
    // Another key calls: authenticating with a key is a use of that key.
    const caller = await create();
    expect(await failure(s.clients.verify.reportUsage({ entries }, bearer(caller.secret)))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'PERMISSION_DENIED',
    });
    await flushed();
    expect((await s.clients.keys.getKey({ id: key.id }, admin)).key!.lastUsedTime).toBeUndefined();
  });

  it('records reported uses like VerifyKey’s own: last_used_time moves forward only, counts add up per day', async () => {
    const key = await create();
    const used = new Date(Date.now() - 60_000);
    await s.clients.verify.reportUsage({ entries: [{ keyId: key.id, count: 5, lastUsedTime: used }] }, service);
    await s.clients.verify.reportUsage({ entries: [{ keyId: key.id, count: 2, lastUsedTime: new Date(used.getTime() - 5_000) }] }, service);
    await flushed();
    expect((await s.clients.keys.getKey({ id: key.id }, admin)).key!.lastUsedTime).toEqual(used);
    const day = used.toISOString().slice(0, 10);
    expect((await s.clients.keys.getKeyUsage({ keyId: key.id, startTime: used, endTime: used }, admin)).days).toEqual([
      { day, total: 7, counts: [{ code: VerifyCode.VERIFY_CODE_VALID, count: 7 }] },
    ]);
  });

  it('writes nothing for ids that are not keys, so a caller cannot make storage grow with made-up ids', async () => {
    const key = await create();
    await flushed();
    const madeUp = Array.from({ length: 200 }, () => newId('key'));
    const before = { lastUsed: await s.collections.lastUsed.countDocuments(), usage: await s.collections.usage.countDocuments() };
    await s.clients.verify.reportUsage(
      { entries: [...madeUp, key.id].map((keyId) => ({ keyId, count: 1, lastUsedTime: new Date() })) },
      service,
    );
    await flushed();
    expect(await s.collections.lastUsed.countDocuments({ _id: { $in: madeUp } })).toBe(0);
    expect(await s.collections.usage.countDocuments({ key_id: { $in: madeUp } })).toBe(0);
    // Only the real key gained rows (the sentinel's exist already).
    expect(await s.collections.lastUsed.countDocuments()).toBe(before.lastUsed + 1);
    expect(await s.collections.usage.countDocuments()).toBe(before.usage + 1);
  });

  it('refuses a malformed report as a whole, naming every bad field', async () => {
    const key = await create();
    const now = Date.now();
    const f = await failure(
      s.clients.verify.reportUsage(
        {
          entries: [
            { keyId: key.id, count: 1, lastUsedTime: new Date(now) },
            { keyId: 'key_nope', count: 1, lastUsedTime: new Date(now) },
            { keyId: key.id, count: 0, lastUsedTime: new Date(now) },
            { keyId: key.id, count: 1, lastUsedTime: new Date(now + 10 * 60_000) },
            { keyId: key.id, count: 1, lastUsedTime: new Date(now - 2 * 86_400_000) },
            { keyId: key.id, count: 1 },
          ],
        },
        service,
      ),
    );
    expect(f).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(f.fields).toEqual([
      'entries[1].key_id:INVALID_ID',
      'entries[2].count:INVALID_ARGUMENT',
      'entries[3].last_used_time:INVALID_TIMESTAMP',
      'entries[4].last_used_time:INVALID_TIMESTAMP',
      'entries[5].last_used_time:INVALID_TIMESTAMP',
    ]);
    const tooMany = Array.from({ length: 1_001 }, () => ({ keyId: key.id, count: 1, lastUsedTime: new Date(now) }));
    expect((await failure(s.clients.verify.reportUsage({ entries: tooMany }, service))).fields).toEqual(['entries:INVALID_ARGUMENT']);
    await flushed();
    // The valid first entry of the refused report was not recorded either.
    expect((await s.clients.keys.getKey({ id: key.id }, admin)).key!.lastUsedTime).toBeUndefined();
  });
});
