import { BSON } from 'mongodb';
import { KeyCache, RECENCY_INTERVAL_MS, verifiedKey, type KeyCacheSettings } from '../../../src/domain/keyCache';
import { fakeKey } from './fakeKey';

const SETTINGS: KeyCacheSettings = { maxEntries: 3, negativeMaxEntries: 2, ttlMs: 1000, negativeTtlMs: 100 };
const cache = (over: Partial<KeyCacheSettings> = {}) => new KeyCache({ ...SETTINGS, ...over });
/** No change-log lag: every entry is trusted as far as the revocation bound goes. */
const ANY = -Infinity;
/** A cache entry as a read that started at `readAt` makes it. */
const entry = (readAt: number, over: Parameters<typeof fakeKey>[0] = {}) => verifiedKey(fakeKey(over), readAt);

describe('KeyCache TTLs', () => {
  it('clear() drops found and unknown keys alike, counted as invalidations', () => {
    const c = cache();
    c.store('h1', entry(0));
    c.store('h2', entry(0));
    c.storeAbsent('h3', 0);
    c.clear();
    expect(c.size).toBe(0);
    for (const h of ['h1', 'h2', 'h3']) expect(c.lookup(h, 1, ANY)).toEqual({ state: 'miss' });
    expect(c.stats.evictions.invalidated).toBe(3);
  });

  it('holds() tells whether an entry is kept, past its TTL or not, without counting or moving it', () => {
    const c = cache({ maxEntries: 2 });
    c.store('h1', entry(0));
    c.store('h2', entry(0));
    c.storeAbsent('h3', 0);
    expect(['h1', 'h2', 'h3', 'h4'].map((h) => c.holds(h))).toEqual([true, true, true, false]);
    expect(c.holds('h1')).toBe(true); // long past the TTL: still held until a lookup drops it
    expect(c.stats).toMatchObject({ hits: 0, misses: 0, unconfirmed: 0 });
    // h1 was not moved to the recent end by holds(): it is the one the next store evicts.
    c.store('h5', entry(0));
    expect([c.holds('h1'), c.holds('h2')]).toEqual([false, true]);
  });

  it('misses on an empty cache', () => {
    const c = cache();
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'miss' });
    expect(c.stats.misses).toBe(1);
  });

  it('a found key is served before the TTL, then dropped', () => {
    const c = cache();
    const key = entry(10_000);
    c.store('h', key);
    expect(c.lookup('h', 10_000, ANY)).toEqual({ state: 'found', key });
    expect(c.lookup('h', 10_999, ANY)).toEqual({ state: 'found', key });
    expect(c.lookup('h', 11_000, ANY)).toEqual({ state: 'miss' });
    expect(c.size).toBe(0);
    // Dropped for good: even an earlier clock finds nothing now.
    expect(c.lookup('h', 10_000, ANY)).toEqual({ state: 'miss' });
    expect(c.stats).toMatchObject({ hits: 2, misses: 2, evictions: { expired: 1 } });
  });

  it('the TTL runs from when the read started, and a lookup does not extend it', () => {
    const c = cache();
    c.store('h', entry(0));
    expect(c.lookup('h', 900, ANY).state).toBe('found');
    expect(c.lookup('h', 1000, ANY).state).toBe('miss');
  });

  it('storing again restarts the TTL', () => {
    const c = cache();
    c.store('h', entry(0, { etag: 'old' }));
    const newer = entry(800, { etag: 'new' });
    c.store('h', newer);
    expect(c.lookup('h', 1500, ANY)).toEqual({ state: 'found', key: newer });
    expect(c.size).toBe(1);
  });

  it('an absent entry uses the negative TTL', () => {
    const c = cache();
    c.storeAbsent('h', 0);
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'absent' });
    expect(c.lookup('h', 99, ANY)).toEqual({ state: 'absent' });
    expect(c.lookup('h', 100, ANY)).toEqual({ state: 'miss' });
    expect(c.size).toBe(0);
  });

  it('a key found after being absent replaces the absent entry, and the other way round', () => {
    const c = cache();
    c.storeAbsent('h', 0);
    const key = entry(1);
    c.store('h', key);
    expect(c.lookup('h', 2, ANY)).toEqual({ state: 'found', key });
    c.storeAbsent('h', 3);
    expect(c.lookup('h', 4, ANY)).toEqual({ state: 'absent' });
    expect(c.size).toBe(1);
  });
});

describe('KeyCache: the revocation bound', () => {
  it('a found key read before trustReadsFrom is a miss, counted as unconfirmed, and kept', () => {
    const c = cache();
    const key = entry(100);
    c.store('h', key);
    expect(c.lookup('h', 500, 101)).toEqual({ state: 'miss' });
    expect(c.stats).toMatchObject({ hits: 0, misses: 0, unconfirmed: 1 });
    // Once the change log confirms the cache again, the same entry is served without a read.
    expect(c.lookup('h', 600, ANY)).toEqual({ state: 'found', key });
    expect(c.lookup('h', 700, 100)).toEqual({ state: 'found', key }); // read at 100: trusted from 100
  });

  it('absent entries are not subject to it (they fail closed)', () => {
    const c = cache();
    c.storeAbsent('h', 0);
    expect(c.lookup('h', 50, 40)).toEqual({ state: 'absent' });
  });
});

describe('KeyCache LRU', () => {
  it('evicts the least recently stored found key beyond maxEntries', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c', 'd']) c.store(h, entry(0, { hash: h }));
    expect(c.size).toBe(3);
    expect(c.lookup('a', 1, ANY).state).toBe('miss');
    for (const h of ['b', 'c', 'd']) expect(c.lookup(h, 1, ANY).state).toBe('found');
    expect(c.stats.evictions.capacity).toBe(1);
  });

  it('a looked-up entry survives; the least recently used one goes', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, entry(0, { hash: h }));
    expect(c.lookup('a', 1, ANY).state).toBe('found'); // a is now most recently used; b is the LRU
    c.store('d', entry(2, { hash: 'd' }));
    expect(c.lookup('b', 3, ANY).state).toBe('miss');
    expect(c.lookup('a', 3, ANY).state).toBe('found');
    c.store('e', entry(4, { hash: 'e' })); // order was c, d, a(looked up at 3) → c goes
    expect(c.lookup('c', 5, ANY).state).toBe('miss');
    for (const h of ['a', 'd', 'e']) expect(c.lookup(h, 5, ANY).state).toBe('found');
  });

  it('moves a hit entry to the most recent end at most once per RECENCY_INTERVAL_MS', () => {
    const c = cache({ ttlMs: 60_000 });
    for (const h of ['a', 'b', 'c']) c.store(h, entry(0, { hash: h }));
    c.lookup('a', 10, ANY); // moved: b, c, a
    c.lookup('b', 20, ANY); // moved: c, a, b
    c.lookup('a', 30, ANY); // moved at 10: keeps its place
    c.store('d', entry(40, { hash: 'd' })); // c goes
    c.store('e', entry(50, { hash: 'e' })); // then a, not moved at 30
    expect(c.lookup('a', 60, ANY).state).toBe('miss');
    expect(c.lookup('c', 60, ANY).state).toBe('miss');

    const later = cache({ ttlMs: 60_000 });
    for (const h of ['a', 'b', 'c']) later.store(h, entry(0, { hash: h }));
    later.lookup('a', 10, ANY); // b, c, a
    later.lookup('b', 20, ANY); // c, a, b
    later.lookup('a', 10 + RECENCY_INTERVAL_MS, ANY); // a full interval on: moved again: c, b, a
    later.store('d', entry(2000, { hash: 'd' })); // c goes
    later.store('e', entry(2000, { hash: 'e' })); // then b
    expect(later.lookup('b', 2001, ANY).state).toBe('miss');
    expect(later.lookup('a', 2001, ANY).state).toBe('found');
  });

  it('remembers no more moves than both caches hold entries: past that, a hit moves its entry again', () => {
    const c = cache({ ttlMs: 60_000, negativeTtlMs: 60_000 });
    for (const h of ['a', 'b', 'c']) c.store(h, entry(0, { hash: h }));
    for (const h of ['x', 'y']) c.storeAbsent(h, 0);
    ['a', 'b', 'c', 'x', 'y'].forEach((h, i) => c.lookup(h, i + 1, ANY)); // 5 moves remembered: found order a, b, c
    c.lookup('a', 6, ANY); // as many as both hold (3 + 2): the record starts over, and a moves: b, c, a
    c.store('d', entry(7, { hash: 'd' })); // b goes
    expect(c.lookup('b', 8, ANY).state).toBe('miss');
    expect(c.lookup('a', 8, ANY).state).toBe('found');
  });

  it('re-storing an entry makes it most recent without evicting anything', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, entry(0, { hash: h }));
    c.store('a', entry(1, { hash: 'a' }));
    expect(c.size).toBe(3);
    expect(c.stats.evictions.capacity).toBe(0);
    c.store('d', entry(2, { hash: 'd' }));
    expect(c.lookup('b', 3, ANY).state).toBe('miss');
    expect(c.lookup('a', 3, ANY).state).toBe('found');
  });

  it('absent entries have their own LRU: any number of them never evicts a found key', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, entry(0, { hash: h }));
    for (let i = 0; i < 1000; i++) c.storeAbsent(`unknown ${i}`, 0);
    expect(c.size).toBe(3 + SETTINGS.negativeMaxEntries);
    for (const h of ['a', 'b', 'c']) expect(c.lookup(h, 1, ANY).state).toBe('found');
    expect(c.lookup('unknown 999', 1, ANY).state).toBe('absent');
    expect(c.lookup('unknown 997', 1, ANY).state).toBe('miss');
    expect(c.stats.evictions.capacity).toBe(1000 - SETTINGS.negativeMaxEntries);
  });

  it('maxEntries 0 stores no found keys, negativeMaxEntries 0 no absent ones', () => {
    const c = cache({ maxEntries: 0 });
    c.store('h', entry(0));
    c.storeAbsent('n', 0);
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'miss' });
    expect(c.lookup('n', 0, ANY)).toEqual({ state: 'absent' });
    const d = cache({ negativeMaxEntries: 0 });
    d.store('h', entry(0));
    d.storeAbsent('n', 0);
    expect(d.lookup('h', 0, ANY).state).toBe('found');
    expect(d.lookup('n', 0, ANY)).toEqual({ state: 'miss' });
  });
});

describe('KeyCache.evict and evictUnlessCurrent', () => {
  it('evict removes a found or absent entry at once; an absent hash is a no-op, not counted', () => {
    const c = cache();
    c.store('a', entry(0));
    c.storeAbsent('n', 0);
    c.evict('a');
    c.evict('n');
    c.evict('zzz');
    expect(c.size).toBe(0);
    expect(c.lookup('a', 1, ANY)).toEqual({ state: 'miss' });
    expect(c.lookup('n', 1, ANY)).toEqual({ state: 'miss' });
    expect(c.stats.evictions.invalidated).toBe(2);
  });

  it('keeps a found key that already is the logged version; evicts an older one', () => {
    const c = cache();
    c.store('current', entry(0, { etag: 'e2' }));
    c.store('older', entry(0, { etag: 'e1' }));
    c.evictUnlessCurrent('current', 'e2');
    c.evictUnlessCurrent('older', 'e2');
    expect(c.lookup('current', 1, ANY).state).toBe('found');
    expect(c.lookup('older', 1, ANY).state).toBe('miss');
    expect(c.stats.evictions.invalidated).toBe(1);
  });

  it('a deletion ("") evicts a found key and keeps an absent entry; a creation evicts an absent entry', () => {
    const c = cache();
    c.store('deleted', entry(0));
    c.storeAbsent('known absent', 0);
    c.storeAbsent('created', 0);
    c.evictUnlessCurrent('deleted', '');
    c.evictUnlessCurrent('known absent', '');
    c.evictUnlessCurrent('created', 'e1');
    c.evictUnlessCurrent('never cached', 'e1');
    expect(c.lookup('deleted', 1, ANY).state).toBe('miss');
    expect(c.lookup('known absent', 1, ANY).state).toBe('absent');
    expect(c.lookup('created', 1, ANY).state).toBe('miss');
    expect(c.stats.evictions.invalidated).toBe(2);
  });
});

describe('verifiedKey', () => {
  it('keeps only what Verify and API-key authentication use, with the expiry as epoch milliseconds', () => {
    const expires = new Date('2030-01-01T00:00:00.000Z');
    const doc = fakeKey({
      scopes: ['read', 'write'],
      metadata: { team: 'a' },
      rate_limit: { limit: 5, window_seconds: 60 },
      expires_at: expires,
    });
    expect(verifiedKey(doc, 42)).toStrictEqual({
      _id: doc._id,
      org_id: doc.org_id,
      workspace_id: null,
      scopes: ['read', 'write'],
      environment: 'live',
      expires_at_ms: expires.getTime(),
      rate_limit: { limit: 5, window_seconds: 60 },
      metadata: { team: 'a' },
      created_by: doc.created_by,
      allow_self_revoke: false,
      status: 'active',
      etag: 'e1',
      read_at: 42,
    });
  });

  const decoded = (over: Parameters<typeof fakeKey>[0]) => BSON.deserialize(BSON.serialize(fakeKey(over))) as ReturnType<typeof fakeKey>;

  it('shares one frozen copy of a scope set, a rate limit and small metadata across keys, even when each was decoded on its own', () => {
    const over = { scopes: ['read', 'write'], rate_limit: { limit: 7, window_seconds: 10 }, metadata: { tier: 'pro', team: 'billing' } };
    const [a, b] = [verifiedKey(decoded(over), 0), verifiedKey(decoded(over), 1)];
    for (const field of ['scopes', 'rate_limit', 'metadata'] as const) {
      expect(a[field]).toBe(b[field]);
      expect(Object.isFrozen(a[field])).toBe(true);
    }
  });

  it('keeps metadata apart when it differs, and does not share large metadata', () => {
    expect(verifiedKey(decoded({ metadata: { a: '1' } }), 0).metadata).not.toBe(verifiedKey(decoded({ metadata: { a: '2' } }), 0).metadata);
    // Same pairs in another order are another map: no sorting on the hot path's miss either.
    expect(verifiedKey(decoded({ metadata: { a: '1', b: '2' } }), 0).metadata).toEqual({ a: '1', b: '2' });
    const big = { blob: 'x'.repeat(300) };
    const [x, y] = [verifiedKey(decoded({ metadata: big }), 0), verifiedKey(decoded({ metadata: big }), 0)];
    expect(x.metadata).toEqual(big);
    expect(x.metadata).not.toBe(y.metadata);
    expect(Object.isFrozen(x.metadata)).toBe(true);
  });
});
