import { status, type Metadata } from '@grpc/grpc-js';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { bearer } from '../../src/client/promiseClient';
import { generateSecret } from '../../src/domain/keyFormat';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('VerifyKey', () => {
  let s: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let service: Metadata;
  beforeAll(async () => {
    // Polling off (60 s, so the bound is relaxed to match) so storage reads counted below are Verify's own.
    s = await startTestServer('verify', {
      INVALIDATION_POLL_MS: '60000',
      VERIFY_REVOCATION_BOUND_MS: '120000',
      USAGE_FLUSH_INTERVAL_MS: '200',
    });
    admin = await s.admin();
    service = bearer(s.verifyToken);
  });
  afterAll(() => s.stop());

  const create = async (extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes: ['read', 'write'], metadata: { plan: 'pro' }, ...extra }, admin.metadata);
  const verify = (key: string, requiredScopes: string[] = []) => s.clients.verify.verifyKey({ key, requiredScopes }, service);

  it('answers VALID with the key id, org, scopes, metadata and expiry', async () => {
    const expireTime = new Date(Date.now() + 3_600_000);
    const { key, secret } = await create({ expireTime, workspaceId: 'ws_1' });
    const r = await verify(secret, ['read']);
    expect(r).toMatchObject({
      valid: true,
      code: VerifyCode.VERIFY_CODE_VALID,
      keyId: key!.id,
      orgId: admin.orgId,
      workspaceId: 'ws_1',
      scopes: ['read', 'write'],
      metadata: { plan: 'pro' },
    });
    expect(r.expireTime?.getTime()).toBe(expireTime.getTime());
  });

  it('answers MALFORMED for garbage and for a bad checksum, without touching storage', async () => {
    const { secret } = await create();
    const flipped = secret.slice(0, -1) + (secret.endsWith('a') ? 'b' : 'a');
    const before = s.app.storage.counters.reads;
    for (const k of ['', 'hello', 'sk_live_short', flipped, `${secret}x`, 'x'.repeat(5000)]) {
      const r = await verify(k);
      expect(r).toMatchObject({ valid: false, code: VerifyCode.VERIFY_CODE_MALFORMED, keyId: '' });
    }
    expect(s.app.storage.counters.reads).toBe(before);
  });

  it('answers NOT_FOUND for unknown well-formed keys, and caches that: 1000 checks cost at most 1 read', async () => {
    const unknown = generateSecret('sk', 'live');
    const before = s.app.storage.counters.reads;
    const results = await Promise.all(Array.from({ length: 1000 }, () => verify(unknown)));
    expect(results.every((r) => r.code === VerifyCode.VERIFY_CODE_NOT_FOUND && !r.valid)).toBe(true);
    expect(s.app.storage.counters.reads - before).toBeLessThanOrEqual(1);
  });

  it('answers REVOKED at once after a revoke through this instance, even for a cached key', async () => {
    const { key, secret } = await create();
    expect((await verify(secret)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
    await s.clients.keys.revokeKey({ id: key!.id }, admin.metadata);
    expect(await verify(secret)).toMatchObject({ valid: false, code: VerifyCode.VERIFY_CODE_REVOKED, keyId: key!.id });
  });

  it('answers ARCHIVED and EXPIRED from the stored state', async () => {
    const archived = await create();
    const expired = await create();
    await s.collections.keys.updateOne({ _id: archived.key!.id }, { $set: { status: 'archived' } });
    await s.collections.keys.updateOne({ _id: expired.key!.id }, { $set: { expires_at: new Date(Date.now() - 1000) } });
    expect((await verify(archived.secret)).code).toBe(VerifyCode.VERIFY_CODE_ARCHIVED);
    expect((await verify(expired.secret)).code).toBe(VerifyCode.VERIFY_CODE_EXPIRED);
  });

  it('answers EXPIRED once expire_time passes, also for a cached key', async () => {
    const { secret } = await create({ expireTime: new Date(Date.now() + 1200) });
    expect((await verify(secret)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
    await sleep(1300);
    expect((await verify(secret)).code).toBe(VerifyCode.VERIFY_CODE_EXPIRED);
  });

  it('answers INSUFFICIENT_SCOPE when a required scope is missing', async () => {
    const { secret } = await create({ scopes: ['read'] });
    expect(await verify(secret, ['read', 'write'])).toMatchObject({ valid: false, code: VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE });
  });

  it('reports the first failing check: a revoked key lacking a scope is REVOKED', async () => {
    const { key, secret } = await create({ scopes: ['read'] });
    await s.clients.keys.revokeKey({ id: key!.id }, admin.metadata);
    expect((await verify(secret, ['write'])).code).toBe(VerifyCode.VERIFY_CODE_REVOKED);
  });

  it('answers RATE_LIMITED past the key’s limit, with remaining and reset', async () => {
    const { secret } = await create({ rateLimit: { limit: 3, windowSeconds: 60 } });
    // Windows are aligned to whole minutes: the four calls below must fall in one.
    if (Date.now() % 60_000 > 58_000) await sleep(60_000 - (Date.now() % 60_000));
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await verify(secret));
    expect(results.map((r) => r.code)).toEqual([
      VerifyCode.VERIFY_CODE_VALID,
      VerifyCode.VERIFY_CODE_VALID,
      VerifyCode.VERIFY_CODE_VALID,
      VerifyCode.VERIFY_CODE_RATE_LIMITED,
    ]);
    expect(results.map((r) => r.rateLimit?.remaining)).toEqual([2, 1, 0, 0]);
    expect(results[3].rateLimit!.limit).toBe(3);
    const resetTime = results[3].rateLimit!.resetTime!.getTime();
    expect(resetTime % 60_000).toBe(0);
    expect(resetTime - Date.now()).toBeGreaterThan(0);
    expect(resetTime - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it('writes last_used_at in batches: 200 verifications → one usage write for the key', async () => {
    const { key, secret } = await create();
    await sleep(300); // let any earlier batch flush
    const writesBefore = s.app.storage.counters.writes;
    await Promise.all(Array.from({ length: 200 }, () => verify(secret)));
    await sleep(600);
    const used = await s.collections.lastUsed.findOne({ _id: key!.id });
    expect(used!.last_used_at).toBeInstanceOf(Date);
    expect((await s.clients.keys.getKey({ id: key!.id }, admin.metadata)).key!.lastUsedTime).toEqual(used!.last_used_at);
    // Usage never rewrites the key document itself (it could race a revocation).
    expect(await s.collections.keys.findOne({ _id: key!.id, last_used_at: { $exists: true } })).toBeNull();
    const daily = await s.collections.usage.find({ key_id: key!.id }).toArray();
    expect(daily.map((d) => d.count)).toEqual([200]);
    // One bulk write for last_used_at and one for the daily count, whatever the rate.
    expect(s.app.storage.counters.writes - writesBefore).toBeLessThanOrEqual(2);
  });

  it('refuses callers that are not services: a user token gets PERMISSION_DENIED', async () => {
    const { secret } = await create();
    await expect(s.clients.verify.verifyKey({ key: secret }, admin.metadata)).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
    });
  });
});

describe('VerifyKey under a flood of unknown keys', () => {
  it('1000 distinct unknown keys, with room for 200 of them, leave a warm key cached: 0 reads for it', async () => {
    // A loaded FerretDB may delay a change-log poll past 1 s; this test is about the LRU, not that bound.
    const s = await startTestServer('verify_flood', { VERIFY_NEGATIVE_CACHE_MAX_ENTRIES: '200', VERIFY_REVOCATION_BOUND_MS: '10000' });
    try {
      const admin = await s.admin();
      const service = bearer(s.verifyToken);
      const { secret } = await s.clients.keys.createKey({ name: 'warm', scopes: ['read'] }, admin.metadata);
      expect((await s.clients.verify.verifyKey({ key: secret }, service)).code).toBe(VerifyCode.VERIFY_CODE_VALID);
      const unknown = Array.from({ length: 1000 }, () => generateSecret('sk', 'live'));
      const before = s.app.storage.counters.keyLookups;
      for (let i = 0; i < unknown.length; i += 50) {
        const batch = await Promise.all(unknown.slice(i, i + 50).map((key) => s.clients.verify.verifyKey({ key }, service)));
        expect(batch.every((r) => r.code === VerifyCode.VERIFY_CODE_NOT_FOUND)).toBe(true);
      }
      expect(s.app.storage.counters.keyLookups - before).toBe(1000);

      const lookups = async (key: string) => {
        const at = s.app.storage.counters.keyLookups;
        await s.clients.verify.verifyKey({ key }, service);
        return s.app.storage.counters.keyLookups - at;
      };
      expect(await lookups(secret)).toBe(0); // the warm key
      expect(await lookups(unknown[999])).toBe(0); // among the 200 most recent unknown keys
      expect(await lookups(unknown[0])).toBe(1); // pushed out of the negative LRU
    } finally {
      await s.stop();
    }
  });
});
