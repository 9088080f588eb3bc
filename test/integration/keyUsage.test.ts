import { status, type Metadata } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import type { DailyKeyUsage } from '../../src/gen/apikeys/v1/key_service';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure } from '../support/calls';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';
import { until } from '../support/until';

const DAY_MS = 86_400_000;
const dayOf = (t: Date | number) => new Date(t).toISOString().slice(0, 10);
const daysAgo = (n: number) => dayOf(Date.now() - n * DAY_MS);
const { VERIFY_CODE_VALID: VALID, VERIFY_CODE_EXPIRED: EXPIRED, VERIFY_CODE_REVOKED: REVOKED } = VerifyCode;
const {
  VERIFY_CODE_ARCHIVED: ARCHIVED,
  VERIFY_CODE_INSUFFICIENT_SCOPE: INSUFFICIENT_SCOPE,
  VERIFY_CODE_RATE_LIMITED: RATE_LIMITED,
} = VerifyCode;

/** A day as GetKeyUsage answers it, from its counts by code. */
const usageDay = (day: string, counts: [VerifyCode, number][]): DailyKeyUsage => ({
  day,
  total: counts.reduce((n, [, c]) => n + c, 0),
  counts: counts.map(([code, count]) => ({ code, count })),
});

/**
 * GetKeyUsage against two real instances on one database: each counts the verifications it
 * answers, by result code, and flushes them to documents of its own; reads add them up.
 */
describe('GetKeyUsage', () => {
  let a: TestServer;
  let b: TestServer;
  let org: string;
  let admin: Metadata;

  beforeAll(async () => {
    // Frequent flushes, and the old counts' attribution (on the sweep's interval) every 200 ms.
    const env = { USAGE_FLUSH_INTERVAL_MS: '100', RETENTION_SWEEP_INTERVAL_MS: '200' };
    a = await startTestServer('key_usage', env);
    b = await startSecondInstance(a, env);
    ({ orgId: org, metadata: admin } = await a.admin());
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  const create = async (extra: Record<string, unknown> = {}, md = admin) => {
    const { key, secret } = await a.clients.keys.createKey({ name: 'counted', scopes: ['read'], ...extra }, md);
    return { id: key!.id, secret };
  };
  const usage = (req: { keyId?: string; startTime?: Date; endTime?: Date }, md = admin) =>
    a.clients.keys.getKeyUsage({ keyId: '', ...req }, md).then((r) => r.days);
  /** Verifies on instance `s` and returns the result's code. */
  const verify = async (s: TestServer, secret: string, requiredScopes: string[] = []) =>
    (await s.clients.verify.verifyKey({ key: secret, requiredScopes }, bearer(s.verifyToken))).code;

  it('counts every result that names a key, on both instances, summed per day: by key and for the organization', async () => {
    const limited = await create({ rateLimit: { limit: 2, windowSeconds: 3600 } });
    const open = await create();
    const revoked = await create();
    const archived = await create();
    const expired = await create({ expireTime: new Date(Date.now() + 3_600_000) });
    await a.clients.keys.revokeKey({ id: revoked.id }, admin);
    await a.clients.keys.archiveKey({ id: archived.id }, admin);
    // Expiry takes time: written directly, before the key is ever presented.
    await a.collections.keys.updateOne({ _id: expired.id }, { $set: { expires_at: new Date(Date.now() - 1000) } });

    // The limit holds across instances: two VALID on a, then RATE_LIMITED on a and on b.
    expect([await verify(a, limited.secret), await verify(a, limited.secret), await verify(a, limited.secret)]).toEqual([
      VALID,
      VALID,
      RATE_LIMITED,
    ]);
    expect(await verify(b, limited.secret)).toBe(RATE_LIMITED);
    for (const s of [a, b]) {
      expect(await verify(s, limited.secret, ['write'])).toBe(INSUFFICIENT_SCOPE);
      expect(await verify(s, revoked.secret)).toBe(REVOKED);
      expect(await verify(s, open.secret)).toBe(VALID);
    }
    expect(await verify(b, archived.secret)).toBe(ARCHIVED);
    expect(await verify(a, expired.secret)).toBe(EXPIRED);
    expect(await verify(a, expired.secret)).toBe(EXPIRED);
    // No key, no count: malformed and unknown secrets.
    await verify(a, 'sk_live_garbage');
    const spare = (await create()).secret;
    expect(await verify(b, spare.slice(0, -1) + (spare.endsWith('x') ? 'y' : 'x'))).not.toBe(VALID);

    const today = dayOf(Date.now());
    await until('both instances’ flushes', async () => (await usage({}))[0]?.total === 13);
    expect(await usage({})).toEqual([
      usageDay(today, [
        [VALID, 4],
        [EXPIRED, 2],
        [REVOKED, 2],
        [ARCHIVED, 1],
        [INSUFFICIENT_SCOPE, 2],
        [RATE_LIMITED, 2],
      ]),
    ]);
    expect(await usage({ keyId: limited.id })).toEqual([
      usageDay(today, [
        [VALID, 2],
        [INSUFFICIENT_SCOPE, 2],
        [RATE_LIMITED, 2],
      ]),
    ]);
    expect(await usage({ keyId: revoked.id })).toEqual([usageDay(today, [[REVOKED, 2]])]);
    // Each instance wrote its own documents: no document has two writers.
    const docs = await a.collections.usage.find({ key_id: open.id, code: 'VALID' }).toArray();
    expect(docs.map((d) => d.count)).toEqual([1, 1]);
    expect(new Set(docs.map((d) => d._id)).size).toBe(2);
    expect(docs.every((d) => d.org_id === org && d.day === today)).toBe(true);
  });

  it('reads counts written before usage was counted by result as VALID: at once for the key, for the organization once attributed', async () => {
    const { metadata } = await a.admin();
    const key = await create({}, metadata);
    const old = (day: string, keyId = key.id, count = 5) => ({ _id: `${keyId}|${day}`, key_id: keyId, day, count });
    const gone = newId('key');
    await a.collections.usage.insertMany([old(daysAgo(3)), old(daysAgo(2), key.id, 7), old(daysAgo(1), key.id, 1), old(daysAgo(3), gone)]);

    const expected = [usageDay(daysAgo(3), [[VALID, 5]]), usageDay(daysAgo(2), [[VALID, 7]]), usageDay(daysAgo(1), [[VALID, 1]])];
    expect(await usage({ keyId: key.id }, metadata)).toEqual(expected);
    // Days before yesterday get the key's organization; yesterday's may still have a writer of the
    // previous version, so it waits for its turn.
    // A deleted key's get "" (no organization's).
    const orphan = () => a.collections.usage.findOne({ _id: `${gone}|${daysAgo(3)}` });
    await until('the old counts’ attribution', async () => (await usage({}, metadata)).length === 2 && (await orphan())?.org_id === '');
    expect(await usage({}, metadata)).toEqual(expected.slice(0, 2));
    expect(await a.collections.usage.findOne({ _id: `${key.id}|${daysAgo(1)}` })).not.toHaveProperty('org_id');
    expect(await usage({ keyId: key.id }, metadata)).toEqual(expected);
  });

  it('counts the days from start_time’s to end_time’s, both included; by default the 30 days before end_time’s and that day', async () => {
    const { orgId, metadata } = await a.admin();
    const key = await create({}, metadata);
    const counted = (n: number) => ({
      _id: `${key.id}|${daysAgo(n)}|elsewhere|VALID`,
      org_id: orgId,
      key_id: key.id,
      day: daysAgo(n),
      code: 'VALID' as const,
      count: n + 1,
    });
    await a.collections.usage.insertMany([0, 1, 10, 11, 12, 30, 31, 366, 367].map(counted));
    const days = async (req: { startTime?: Date; endTime?: Date }) => (await usage({ keyId: key.id, ...req }, metadata)).map((d) => d.day);

    expect(await days({})).toEqual([30, 12, 11, 10, 1, 0].map(daysAgo));
    const endOf = (n: number) => new Date(Date.parse(daysAgo(n)) + DAY_MS - 1);
    const startOf = (n: number) => new Date(Date.parse(daysAgo(n)));
    expect(await days({ startTime: endOf(12), endTime: startOf(10) })).toEqual([12, 11, 10].map(daysAgo));
    expect(await days({ endTime: endOf(1) })).toEqual([31, 30, 12, 11, 10, 1].map(daysAgo));
    expect(await days({ startTime: startOf(31), endTime: startOf(31) })).toEqual([daysAgo(31)]);
    // At most 366 days from start_time to end_time.
    expect(await days({ startTime: startOf(367), endTime: startOf(1) })).toEqual([367, 366, 31, 30, 12, 11, 10, 1].map(daysAgo));
    expect(await failure(usage({ keyId: key.id, startTime: startOf(367), endTime: new Date(startOf(1).getTime() + 1) }, metadata))).toEqual(
      {
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_TIME_RANGE',
        domain: 'apikeys.v1',
        fields: ['end_time:INVALID_TIME_RANGE'],
      },
    );
    // Only the start: the end is now.
    expect(await failure(usage({ startTime: startOf(367) }, metadata))).toMatchObject({ fields: ['end_time:INVALID_TIME_RANGE'] });
    expect(await failure(usage({ startTime: startOf(1), endTime: startOf(2) }, metadata))).toMatchObject({
      fields: ['end_time:INVALID_TIME_RANGE'],
    });
    expect(await failure(usage({ keyId: 'key_123', startTime: startOf(1), endTime: startOf(2) }, metadata))).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_ID',
      domain: 'apikeys.v1',
      fields: ['key_id:INVALID_ID', 'end_time:INVALID_TIME_RANGE'],
    });
  });

  it('shows another organization nothing: its key is NOT_FOUND, its organization-wide counts are its own', async () => {
    const key = await create();
    await verify(a, key.secret);
    await until('the flush', async () => (await usage({ keyId: key.id })).length === 1);
    const other = await a.admin();
    expect(await failure(usage({ keyId: key.id }, other.metadata))).toMatchObject({ code: status.NOT_FOUND, reason: 'KEY_NOT_FOUND' });
    expect(await usage({}, other.metadata)).toEqual([]);
    // Nor a key of no organization.
    expect(await failure(usage({ keyId: newId('key') }))).toMatchObject({ code: status.NOT_FOUND, reason: 'KEY_NOT_FOUND' });
  });

  it('records a staff member’s read of another organization’s usage in its audit trail, with the real actor', async () => {
    const staffId = newId('usr');
    const staff = bearer(await a.userToken({ sub: staffId, orgId: newId('org'), email: 'ops@staff.example', emailVerified: true }), {
      'x-organization-id': org,
    });
    const key = await create();
    await a.clients.keys.getKeyUsage({ keyId: key.id }, staff);
    await a.clients.keys.getKeyUsage({}, staff);
    const events = await a.collections.audit.find({ actor: staffId }).sort({ time: 1, _id: 1 }).toArray();
    expect(events.map((e) => [e.action, e.org_id, e.key_id, e.acting_as, e.outcome])).toEqual([
      ['key.usage', org, key.id, 'ops@staff.example', 'OK'],
      ['key.usage', org, null, 'ops@staff.example', 'OK'],
    ]);
  });
});
