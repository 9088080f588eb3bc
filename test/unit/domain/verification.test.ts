import { DomainError } from '../../../src/domain/errors';
import { KeyCache, verifiedKey, type KeyCacheSettings } from '../../../src/domain/keyCache';
import { checksumOf, generateSecret, hashSecret } from '../../../src/domain/keyFormat';
import { UsageRecorder } from '../../../src/domain/usageRecorder';
import { Verifier, type VerifyOptions } from '../../../src/domain/verification';
import type { StoredKey } from '../../../src/domain/model';
import { soleRateLimiter } from '../../support/fakes/rateCounterStore';
import { fakeKey } from './fakeKey';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const CACHE: KeyCacheSettings = { maxEntries: 100, negativeMaxEntries: 100, ttlMs: 1_000, negativeTtlMs: 500 };
/** Longer than any clock move below, except where a test is about the bound. */
const BOUND_MS = 60_000;

class StorageDown extends Error {
  override name = 'MongoServerSelectionError';
}

/** In-memory storage keyed by hash; counts reads; can be switched to failing. */
class FakeStorage {
  readonly docs = new Map<string, StoredKey>();
  readonly reads: string[] = [];
  failing = false;

  put(secret: string, over: Partial<StoredKey> = {}): StoredKey {
    const doc = fakeKey({ hash: hashSecret(secret), ...over });
    this.docs.set(doc.hash, doc);
    return doc;
  }

  findByHash = (hash: string): Promise<StoredKey | null> => {
    this.reads.push(hash);
    if (this.failing) return Promise.reject(new StorageDown('connect ECONNREFUSED 10.0.0.1:27017'));
    return Promise.resolve(this.docs.get(hash) ?? null);
  };
}

/** The verifier's one clock (deps.nowMs), moved by hand. */
let wallClock = NOW.getTime();

function setup(cache: Partial<KeyCacheSettings> = {}, revocationBoundMs = BOUND_MS) {
  const storage = new FakeStorage();
  const deps = {
    keyPrefix: 'sk',
    findByHash: (hash: string): Promise<StoredKey | null> => storage.findByHash(hash),
    nowMs: () => wallClock,
    cache: new KeyCache({ ...CACHE, ...cache }),
    usage: new UsageRecorder(),
    rateLimiter: soleRateLimiter(() => wallClock),
    revocationBoundMs,
    announcementTtlMs: CACHE.ttlMs,
    maxConcurrentReads: 1_000,
  };
  const verifier = new Verifier(deps);
  const verify = (secret: string, scopes: string[] = [], opts?: VerifyOptions) => verifier.verify(secret, scopes, opts);
  return { storage, deps, verifier, verify };
}

beforeEach(() => {
  wallClock = NOW.getTime();
});

describe('Verifier: malformed secrets', () => {
  const good = generateSecret('sk', 'live');
  const body = good.slice(0, -6);
  it.each([
    ['empty', ''],
    ['garbage', 'hello world'],
    ['other prefix', generateSecret('pk', 'live')],
    ['bad checksum', body + (checksumOf(body) === '000000' ? '000001' : '000000')],
    ['truncated', good.slice(0, -1)],
    ['too long', `${good}x`],
    ['huge', 'sk_live_'.padEnd(1_000_000, 'a')],
  ])('%s → MALFORMED with no storage read', async (_label, secret) => {
    const { storage, deps, verify } = setup();
    await expect(verify(secret, ['read'])).resolves.toEqual({ code: 'MALFORMED' });
    expect(storage.reads).toHaveLength(0);
    expect(deps.cache.size).toBe(0);
    // Garbage is no cache lookup: the miss count stays the count of storage reads.
    expect(deps.cache.stats).toMatchObject({ hits: 0, misses: 0, unconfirmed: 0 });
  });

  it('a near miss of a cached key (one character changed) is MALFORMED, not the cached key', async () => {
    const { storage, deps, verify } = setup();
    storage.put(good);
    await expect(verify(good)).resolves.toMatchObject({ code: 'VALID' });
    const last = good.at(-1) === 'a' ? 'b' : 'a';
    await expect(verify(good.slice(0, -1) + last)).resolves.toEqual({ code: 'MALFORMED' });
    await expect(verify(`${good} `)).resolves.toEqual({ code: 'MALFORMED' });
    expect(storage.reads).toHaveLength(1);
    expect(deps.cache.stats).toMatchObject({ hits: 0, misses: 1 });
  });

  it('a non-string secret (a caller bypassing the types) is MALFORMED, not a crash', async () => {
    const { verify } = setup();
    for (const bad of [undefined, null, 42, {}, ['sk']]) {
      await expect(verify(bad as string)).resolves.toEqual({ code: 'MALFORMED' });
    }
  });
});

describe('Verifier: lookups and caching', () => {
  it('VALID for a stored active key, then served from cache', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = storage.put(secret);
    await expect(verify(secret, ['read'])).resolves.toEqual({
      code: 'VALID',
      key: verifiedKey(doc, NOW.getTime()),
      rate: undefined,
      stateAgeMs: 0,
    });
    await expect(verify(secret, ['read'])).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads).toEqual([hashSecret(secret)]);
  });

  it('dates the key state from when each verification began: a read it started is current, one it joined is as old as that read', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = storage.put(secret);
    let land!: () => void;
    storage.findByHash = (hash) => {
      storage.reads.push(hash);
      return new Promise((resolve) => (land = () => resolve(doc)));
    };
    const first = verify(secret);
    wallClock += 40;
    const joined = verify(secret);
    wallClock += 300; // the read takes its time: that does not age what it read
    land();
    await expect(first).resolves.toMatchObject({ code: 'VALID', stateAgeMs: 0 });
    await expect(joined).resolves.toMatchObject({ code: 'VALID', stateAgeMs: 40 });
    expect(storage.reads).toHaveLength(1);
    wallClock += 10;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID', stateAgeMs: 350 }); // cached since the read began
  });

  it('NOT_FOUND is cached: a second call does not read storage', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'test');
    await expect(verify(secret)).resolves.toEqual({ code: 'NOT_FOUND' });
    await expect(verify(secret)).resolves.toEqual({ code: 'NOT_FOUND' });
    expect(storage.reads).toHaveLength(1);
    // After the negative TTL storage is asked again (and may know the key by now).
    const doc = storage.put(secret);
    wallClock += CACHE.negativeTtlMs;
    await expect(verify(secret)).resolves.toEqual({ code: 'VALID', key: verifiedKey(doc, wallClock), rate: undefined, stateAgeMs: 0 });
    expect(storage.reads).toHaveLength(2);
  });

  it('re-reads storage after the TTL and sees a revocation', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    storage.put(secret, { status: 'revoked' });
    wallClock += CACHE.ttlMs - 1;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' }); // still cached
    wallClock += 1;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'REVOKED' }); // stale → re-read
    expect(storage.reads).toHaveLength(2);
  });

  it('evict() makes the next call read storage', async () => {
    const { storage, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    await verify(secret);
    storage.put(secret, { status: 'archived' });
    verifier.evict(hashSecret(secret));
    await expect(verify(secret)).resolves.toMatchObject({ code: 'ARCHIVED' });
    expect(storage.reads).toHaveLength(2);
  });

  it('concurrent misses of one hash share a single storage read', async () => {
    const { storage, deps, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = fakeKey({ hash: hashSecret(secret) });
    let release!: (d: StoredKey) => void;
    let calls = 0;
    deps.findByHash = () => {
      calls++;
      return new Promise((resolve) => (release = resolve));
    };
    const pending = Array.from({ length: 10 }, () => verify(secret));
    await Promise.resolve();
    expect(calls).toBe(1);
    release(doc);
    const results = await Promise.all(pending);
    expect(results.map((r) => r.code)).toEqual(Array(10).fill('VALID'));
    expect(calls).toBe(1);
    // Done reads are not reused: after eviction the next miss reads again.
    deps.cache.evict(doc.hash);
    deps.findByHash = storage.findByHash;
    storage.docs.set(doc.hash, doc);
    await verify(secret);
    expect(storage.reads).toHaveLength(1);
  });

  it('evict() during an in-flight read: later calls read afresh, and the old result is not cached', async () => {
    const { deps, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    let current = fakeKey({ hash });
    const pendingReads: Array<() => void> = [];
    deps.findByHash = () => {
      const snapshot = current; // what storage held when the read started
      return new Promise((resolve) => pendingReads.push(() => resolve(snapshot)));
    };

    const before = verify(secret); // read #1 starts and sees the active key
    current = fakeKey({ hash, status: 'revoked' }); // RevokeKey writes…
    verifier.evict(hash); // …and evicts before it answers
    const after = verify(secret); // a Verify sent after RevokeKey answered
    expect(pendingReads).toHaveLength(2); // it did not join read #1
    pendingReads.forEach((release) => release());

    expect((await before).code).toBe('VALID'); // began before the revocation: fine either way
    expect((await after).code).toBe('REVOKED');
    // The cache holds read #2's answer, not read #1's.
    await expect(verify(secret)).resolves.toMatchObject({ code: 'REVOKED' });
    expect(pendingReads).toHaveLength(2);
  });

  it('evict() while a read is in flight, with no newer read: the old result is not cached', async () => {
    const { storage, deps, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    let release!: () => void;
    deps.findByHash = () => new Promise((resolve) => (release = () => resolve(fakeKey({ hash }))));
    const before = verify(secret);
    verifier.evict(hash);
    release();
    await expect(before).resolves.toMatchObject({ code: 'VALID' });
    expect(deps.cache.size).toBe(0);
    deps.findByHash = storage.findByHash;
    storage.put(secret, { status: 'revoked' });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'REVOKED' });
  });

  it('concurrent misses of different hashes read separately', async () => {
    const { storage, verify } = setup();
    const [a, b] = [generateSecret('sk', 'live'), generateSecret('sk', 'live')];
    storage.put(a);
    const results = await Promise.all([verify(a), verify(b), verify(a), verify(b)]);
    expect(results.map((r) => r.code)).toEqual(['VALID', 'NOT_FOUND', 'VALID', 'NOT_FOUND']);
    expect(new Set(storage.reads)).toEqual(new Set([hashSecret(a), hashSecret(b)]));
    expect(storage.reads).toHaveLength(2);
  });
});

describe('Verifier: a saturated database', () => {
  it('past maxConcurrentReads distinct reads in flight, a miss answers STORAGE_UNAVAILABLE at once; joiners and hits still pass', async () => {
    const { storage, deps, verifier } = setup();
    const gates: (() => void)[] = [];
    const gated = storage.findByHash;
    deps.findByHash = (hash) => new Promise((resolve) => gates.push(() => resolve(gated(hash))));
    deps.maxConcurrentReads = 2;
    const [a, b, c, warm] = [0, 1, 2, 3].map(() => generateSecret('sk', 'live'));
    for (const secret of [a, b, c, warm]) storage.put(secret);
    // A key cached before the database fell behind.
    const warming = verifier.verify(warm, []);
    gates.shift()!();
    expect((await warming).code).toBe('VALID');

    const pending = [verifier.verify(a, []), verifier.verify(b, []), verifier.verify(a, [])];
    await expect(verifier.verify(c, [])).rejects.toMatchObject({
      reason: 'STORAGE_UNAVAILABLE',
      metadata: { cause: 'TooManyReads', max_concurrent_reads: '2' },
    });
    expect(verifier.shed).toBe(1);
    expect((await verifier.verify(warm, [])).code).toBe('VALID'); // a hit needs no read
    for (const open of gates.splice(0)) open();
    expect((await Promise.all(pending)).map((r) => r.code)).toEqual(['VALID', 'VALID', 'VALID']);
    // Room again: the shed key is read now.
    const retry = verifier.verify(c, []);
    gates.shift()!();
    expect((await retry).code).toBe('VALID');
    expect(verifier.shed).toBe(1);
  });
});

describe('Verifier: storage failures', () => {
  it('an uncached key with storage down → DomainError STORAGE_UNAVAILABLE, nothing cached', async () => {
    const { storage, deps, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = storage.put(secret);
    storage.failing = true;
    const err = await verify(secret).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ reason: 'STORAGE_UNAVAILABLE', metadata: { cause: 'MongoServerSelectionError' } });
    expect((err as Error).message).not.toContain('ECONNREFUSED');
    expect(deps.cache.size).toBe(0);
    expect(deps.usage.pending).toBe(0);
    // Recovery: the failure was not cached as "not found".
    storage.failing = false;
    await expect(verify(secret)).resolves.toEqual({ code: 'VALID', key: verifiedKey(doc, NOW.getTime()), rate: undefined, stateAgeMs: 0 });
  });

  it('an expired negative entry is not used once storage fails', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    await expect(verify(secret)).resolves.toEqual({ code: 'NOT_FOUND' });
    storage.failing = true;
    wallClock += CACHE.negativeTtlMs;
    await expect(verify(secret)).rejects.toMatchObject({ reason: 'STORAGE_UNAVAILABLE' });
  });

  it('every caller sharing a failed read gets STORAGE_UNAVAILABLE', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.failing = true;
    const results = await Promise.allSettled([verify(secret), verify(secret), verify(secret)]);
    expect(storage.reads).toHaveLength(1);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ reason: 'STORAGE_UNAVAILABLE' });
    }
  });
  it('past its TTL a cached key is re-read, and with storage down the answer is STORAGE_UNAVAILABLE', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    await verify(secret);
    storage.failing = true;
    wallClock += CACHE.ttlMs;
    await expect(verify(secret)).rejects.toMatchObject({ reason: 'STORAGE_UNAVAILABLE' });
    expect(storage.reads).toHaveLength(2);
  });
});

describe('Verifier: the revocation bound', () => {
  const BOUND = 1_000;

  it('serves a cached key while a change-log poll confirmed the cache within the bound', async () => {
    const { storage, verifier, verify } = setup({ ttlMs: 60_000 }, BOUND);
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    await verify(secret);
    for (let i = 0; i < 5; i++) {
      wallClock += 800;
      verifier.synced(wallClock - 300); // a poll that started 300 ms ago succeeded
      await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    }
    expect(storage.reads).toHaveLength(1);
    expect(verifier.lagMs()).toBe(300);
  });

  it('past the bound without a successful poll: re-reads (one read for concurrent calls) and fails closed when storage is down', async () => {
    const { storage, deps, verifier, verify } = setup({ ttlMs: 60_000 }, BOUND);
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    await verify(secret);
    wallClock += BOUND; // exactly at the bound: still trusted
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads).toHaveLength(1);

    wallClock += 1;
    storage.failing = true;
    const results = await Promise.allSettled([verify(secret), verify(secret), verify(secret)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ reason: 'STORAGE_UNAVAILABLE' });
    expect(storage.reads).toHaveLength(2);
    expect(deps.cache.stats.unconfirmed).toBe(3);

    // A poll succeeds again: the entry, kept, is trusted again without a read.
    verifier.synced(wallClock);
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads).toHaveLength(2);
  });

  it('while polls fail, a key read from storage within the bound is served from the cache', async () => {
    const { storage, verify } = setup({ ttlMs: 60_000 }, BOUND);
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    wallClock += 5_000; // no poll has succeeded for 5 s
    await verify(secret);
    wallClock += BOUND;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads).toHaveLength(1);
    wallClock += 1;
    storage.put(secret, { status: 'revoked' });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'REVOKED' });
    expect(storage.reads).toHaveLength(2);
  });
});

describe('Verifier.invalidate (change-log entries from any instance)', () => {
  it('evicts a cached key older than the logged version and keeps one that already is it', async () => {
    const { storage, verifier, verify } = setup();
    const [older, current] = [generateSecret('sk', 'live'), generateSecret('sk', 'live')];
    storage.put(older, { etag: 'e1' });
    storage.put(current, { etag: 'e2' });
    await verify(older);
    await verify(current);
    storage.put(older, { etag: 'e2', status: 'revoked' });
    verifier.invalidate(hashSecret(older), 'e2');
    verifier.invalidate(hashSecret(current), 'e2');
    await expect(verify(older)).resolves.toMatchObject({ code: 'REVOKED' });
    await expect(verify(current)).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads.filter((h) => h === hashSecret(current))).toHaveLength(1);
  });

  it('a deletion evicts the key; a creation evicts the cached "not found"', async () => {
    const { storage, verifier, verify } = setup();
    const [deleted, created] = [generateSecret('sk', 'live'), generateSecret('sk', 'live')];
    storage.put(deleted);
    await verify(deleted);
    await expect(verify(created)).resolves.toEqual({ code: 'NOT_FOUND' });
    storage.docs.delete(hashSecret(deleted));
    storage.put(created, { etag: 'c1' });
    verifier.invalidate(hashSecret(deleted), '');
    verifier.invalidate(hashSecret(created), 'c1');
    await expect(verify(deleted)).resolves.toEqual({ code: 'NOT_FOUND' });
    await expect(verify(created)).resolves.toMatchObject({ code: 'VALID' });
  });

  it('drops a read in flight: its older result is answered to the calls that joined it, never cached', async () => {
    const { deps, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    let current = fakeKey({ hash, etag: 'e1' });
    const pending: Array<() => void> = [];
    deps.findByHash = () => {
      const snapshot = current; // what storage held when the read started
      return new Promise((resolve) => pending.push(() => resolve(snapshot)));
    };
    const before = verify(secret); // read #1 sees e1
    current = fakeKey({ hash, etag: 'e2', status: 'revoked' }); // another instance revokes
    verifier.invalidate(hash, 'e2');
    const after = verify(secret);
    expect(pending).toHaveLength(2); // the later call did not join read #1
    pending[1]();
    await expect(after).resolves.toMatchObject({ code: 'REVOKED' });
    pending[0](); // read #1 ends last, with the older version
    await expect(before).resolves.toMatchObject({ code: 'VALID' });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'REVOKED', key: { etag: 'e2' } });
    expect(pending).toHaveLength(2); // served from the cache: read #2's answer
  });

  it('drops a read in flight even when the cached key is current (its result may be older)', async () => {
    const { deps, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    let release!: () => void;
    deps.findByHash = () => new Promise((resolve) => (release = () => resolve(fakeKey({ hash, etag: 'e1' }))));
    const before = verify(secret);
    verifier.invalidate(hash, 'e1');
    release();
    await expect(before).resolves.toMatchObject({ code: 'VALID' });
    expect(deps.cache.size).toBe(0);
  });

  it('an entry seen again (polls re-read a margin) leaves a read started since alone: its result is cached', async () => {
    const { deps, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    verifier.invalidate(hash, 'e2');
    let release!: () => void;
    deps.findByHash = () => new Promise((resolve) => (release = () => resolve(fakeKey({ hash, etag: 'e2', status: 'revoked' }))));
    const pending = verify(secret);
    verifier.invalidate(hash, 'e2');
    release();
    await expect(pending).resolves.toMatchObject({ code: 'REVOKED' });
    expect(deps.cache.lookup(hash, wallClock, -Infinity).state).toBe('found');
  });

  it('a change logged before it lands: reads of the older version are answered but not cached until storage shows it', async () => {
    const { storage, deps, verifier, verify } = setup({ ttlMs: 60_000 });
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { etag: 'e1' });
    verifier.invalidate(hashSecret(secret), 'e2'); // logged, not written yet
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    expect(storage.reads).toHaveLength(2);
    expect(deps.cache.size).toBe(0);
    storage.put(secret, { etag: 'e2', status: 'archived' }); // the change lands
    await expect(verify(secret)).resolves.toMatchObject({ code: 'ARCHIVED' });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'ARCHIVED' });
    expect(storage.reads).toHaveLength(3);
  });

  it('a logged change that never lands stops keeping the key out of the cache after the TTL', async () => {
    const { storage, verifier, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { etag: 'e1' });
    verifier.invalidate(hashSecret(secret), 'e2');
    await verify(secret);
    wallClock += CACHE.ttlMs;
    await verify(secret);
    await verify(secret);
    expect(storage.reads).toHaveLength(2);
  });
});

describe('Verifier: a flood of unknown keys', () => {
  it('200 000 distinct unknown keys leave a warm key cached: 0 more reads for it', async () => {
    const { storage, deps, verify } = setup({ maxEntries: 100_000, negativeMaxEntries: 10_000 });
    const warm = generateSecret('sk', 'live');
    storage.put(warm);
    await expect(verify(warm)).resolves.toMatchObject({ code: 'VALID' });
    const readsOfWarm = () => storage.reads.filter((h) => h === hashSecret(warm)).length;
    expect(readsOfWarm()).toBe(1);
    for (let i = 0; i < 200_000; i++) {
      const r = await verify(generateSecret('sk', i % 2 ? 'live' : 'test'));
      if (r.code !== 'NOT_FOUND') throw new Error(`unknown key ${i} answered ${r.code}`);
    }
    expect(storage.reads).toHaveLength(200_001);
    expect(deps.cache.size).toBe(1 + 10_000);
    await expect(verify(warm)).resolves.toMatchObject({ code: 'VALID' });
    expect(readsOfWarm()).toBe(1);
  }, 120_000);
});

describe('Verifier: check order', () => {
  const past = new Date(NOW.getTime() - 1);
  it.each<[string, Partial<StoredKey>, string[], string]>([
    ['revoked + expired + missing scope', { status: 'revoked', expires_at: past }, ['admin'], 'REVOKED'],
    ['archived + expired + missing scope', { status: 'archived', expires_at: past }, ['admin'], 'ARCHIVED'],
    ['expired + missing scope', { expires_at: past }, ['admin'], 'EXPIRED'],
    ['expiring exactly now', { expires_at: new Date(NOW) }, [], 'EXPIRED'],
    ['active, missing one of two scopes', { scopes: ['read'] }, ['read', 'write'], 'INSUFFICIENT_SCOPE'],
    ['active, all scopes', { scopes: ['read', 'write'] }, ['write', 'read'], 'VALID'],
    ['active, no scopes required', { scopes: ['read'] }, [], 'VALID'],
  ])('%s → %s', async (_label, over, scopes, code) => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = storage.put(secret, over);
    const result = await verify(secret, scopes);
    expect(result.code).toBe(code);
    expect(result.key).toEqual(verifiedKey(doc, NOW.getTime())); // the key is reported whenever it was found
  });

  it('expiry uses deps.nowMs, not the wall clock', async () => {
    const { storage, deps, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { expires_at: new Date(NOW.getTime() + 60_000) });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID' });
    deps.nowMs = () => NOW.getTime() + 60_000;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'EXPIRED' });
  });

  it('a failing state check does not consume the rate limit', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { rate_limit: { limit: 1, window_seconds: 60 }, scopes: ['read'] });
    for (let i = 0; i < 3; i++) {
      const r = await verify(secret, ['write']);
      expect(r.code).toBe('INSUFFICIENT_SCOPE');
      expect(r.rate).toBeUndefined();
    }
    await expect(verify(secret, ['read'])).resolves.toMatchObject({ code: 'VALID', rate: { remaining: 0 } });
  });
});

describe('Verifier: rate limits', () => {
  const resetAt = NOW.getTime() + 60_000;

  it('RATE_LIMITED after `limit` VALID calls in the window', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    const doc = storage.put(secret, { rate_limit: { limit: 2, window_seconds: 60 } });
    const results = [await verify(secret), await verify(secret), await verify(secret)];
    expect(results.map((r) => [r.code, r.rate?.remaining])).toEqual([
      ['VALID', 1],
      ['VALID', 0],
      ['RATE_LIMITED', 0],
    ]);
    expect(results[2]).toEqual({
      code: 'RATE_LIMITED',
      key: verifiedKey(doc, NOW.getTime()),
      rate: { allowed: false, limit: 2, remaining: 0, resetAt },
      stateAgeMs: 0,
    });
  });

  it('explicit enforceRateLimit: true enforces too', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { rate_limit: { limit: 1, window_seconds: 60 } });
    await verify(secret, [], { enforceRateLimit: true });
    await expect(verify(secret, [], { enforceRateLimit: true })).resolves.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('enforceRateLimit: false neither checks nor consumes the limit', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { rate_limit: { limit: 1, window_seconds: 60 } });
    for (let i = 0; i < 5; i++) {
      await expect(verify(secret, [], { enforceRateLimit: false })).resolves.toEqual(
        expect.objectContaining({ code: 'VALID', rate: undefined }),
      );
    }
    // The allowance is untouched for enforced calls.
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID', rate: { remaining: 0 } });
    await expect(verify(secret)).resolves.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('keys without a rate limit have no rate decision', async () => {
    const { storage, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret);
    for (let i = 0; i < 5; i++) await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID', rate: undefined });
  });

  it('the window follows deps.nowMs', async () => {
    const { storage, deps, verify } = setup();
    const secret = generateSecret('sk', 'live');
    storage.put(secret, { rate_limit: { limit: 1, window_seconds: 60 } });
    await verify(secret);
    await expect(verify(secret)).resolves.toMatchObject({ code: 'RATE_LIMITED' });
    deps.nowMs = () => resetAt;
    await expect(verify(secret)).resolves.toMatchObject({ code: 'VALID', rate: { resetAt: resetAt + 60_000 } });
  });
});

describe('Verifier: usage', () => {
  it('counts every result that names a key by its code, at deps.nowMs; only VALID ones move the last use', async () => {
    const { storage, deps, verify } = setup();
    const ok = generateSecret('sk', 'live');
    storage.put(ok, { _id: 'key_ok', org_id: 'org_a', rate_limit: { limit: 1, window_seconds: 60 } });
    const revoked = generateSecret('sk', 'live');
    storage.put(revoked, { _id: 'key_revoked', org_id: 'org_a', status: 'revoked' });
    const expired = generateSecret('sk', 'live');
    storage.put(expired, { _id: 'key_expired', org_id: 'org_b', expires_at: new Date(0) });

    await verify('garbage');
    await verify(generateSecret('sk', 'live')); // NOT_FOUND
    expect(deps.usage.pending).toBe(0);
    await verify(revoked);
    await verify(expired);
    await verify(ok, ['admin']); // INSUFFICIENT_SCOPE
    await expect(verify(ok)).resolves.toMatchObject({ code: 'VALID' });
    await expect(verify(ok)).resolves.toMatchObject({ code: 'RATE_LIMITED' });
    const batch = deps.usage.take();
    expect(batch.lastUsed).toEqual([{ keyId: 'key_ok', at: NOW }]);
    expect(batch.daily.map((d) => [d.keyId, d.orgId, d.day, d.code, d.count])).toEqual([
      ['key_revoked', 'org_a', '2025-06-01', 'REVOKED', 1],
      ['key_expired', 'org_b', '2025-06-01', 'EXPIRED', 1],
      ['key_ok', 'org_a', '2025-06-01', 'INSUFFICIENT_SCOPE', 1],
      ['key_ok', 'org_a', '2025-06-01', 'VALID', 1],
      ['key_ok', 'org_a', '2025-06-01', 'RATE_LIMITED', 1],
    ]);
  });
});
