import { KeyCache, type KeyCacheSettings } from '../../../src/domain/keyCache';
import { fakeKey } from './fakeKey';

const SETTINGS: KeyCacheSettings = { maxEntries: 3, ttlMs: 1000, negativeTtlMs: 100, staleWindowMs: 500 };
const cache = (over: Partial<KeyCacheSettings> = {}) => new KeyCache({ ...SETTINGS, ...over });

describe('KeyCache TTLs', () => {
  it('misses on an empty cache', () => {
    const c = cache();
    expect(c.lookup('h', 0)).toEqual({ state: 'miss' });
    expect(c.stats.misses).toBe(1);
  });

  it('a found key is fresh before the TTL, stale within the stale window, then gone', () => {
    const c = cache();
    const key = fakeKey();
    c.store('h', key, 10_000);
    expect(c.lookup('h', 10_000)).toEqual({ state: 'fresh', key });
    expect(c.lookup('h', 10_999)).toEqual({ state: 'fresh', key });
    expect(c.lookup('h', 11_000)).toEqual({ state: 'stale', key });
    expect(c.lookup('h', 11_499)).toEqual({ state: 'stale', key });
    expect(c.size).toBe(1); // a stale lookup keeps the entry for the fallback
    expect(c.lookup('h', 11_500)).toEqual({ state: 'miss' });
    expect(c.size).toBe(0);
    // Dropped for good: even an earlier clock finds nothing now.
    expect(c.lookup('h', 10_000)).toEqual({ state: 'miss' });
    expect(c.stats).toMatchObject({ hits: 2, misses: 4, evictions: { expired: 1 } });
  });

  it('a fresh lookup does not extend the TTL', () => {
    const c = cache();
    c.store('h', fakeKey(), 0);
    expect(c.lookup('h', 900).state).toBe('fresh');
    expect(c.lookup('h', 1000).state).toBe('stale');
  });

  it('storing again restarts the TTL', () => {
    const c = cache();
    c.store('h', fakeKey({ etag: 'old' }), 0);
    const newer = fakeKey({ etag: 'new' });
    c.store('h', newer, 800);
    expect(c.lookup('h', 1500)).toEqual({ state: 'fresh', key: newer });
    expect(c.size).toBe(1);
  });

  it('a negative entry uses the negative TTL and is never stale', () => {
    const c = cache();
    c.store('h', null, 0);
    expect(c.lookup('h', 0)).toEqual({ state: 'fresh', key: null });
    expect(c.lookup('h', 99)).toEqual({ state: 'fresh', key: null });
    // Past the negative TTL but well within ttl + staleWindow: still a miss.
    expect(c.lookup('h', 100)).toEqual({ state: 'miss' });
    expect(c.size).toBe(0);
  });

  it('with no stale window a key goes straight from fresh to miss', () => {
    const c = cache({ staleWindowMs: 0 });
    c.store('h', fakeKey(), 0);
    expect(c.lookup('h', 999).state).toBe('fresh');
    expect(c.lookup('h', 1000)).toEqual({ state: 'miss' });
  });
});

describe('KeyCache LRU', () => {
  it('evicts the least recently stored entry beyond maxEntries', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c', 'd']) c.store(h, fakeKey({ hash: h }), 0);
    expect(c.size).toBe(3);
    expect(c.lookup('a', 1).state).toBe('miss');
    for (const h of ['b', 'c', 'd']) expect(c.lookup(h, 1).state).toBe('fresh');
    expect(c.stats.evictions.capacity).toBe(1);
  });

  it('a looked-up entry survives; the least recently used one goes', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, fakeKey({ hash: h }), 0);
    expect(c.lookup('a', 1).state).toBe('fresh'); // a is now most recently used; b is the LRU
    c.store('d', fakeKey({ hash: 'd' }), 2);
    expect(c.lookup('b', 3).state).toBe('miss');
    expect(c.lookup('a', 3).state).toBe('fresh');
    c.store('e', fakeKey({ hash: 'e' }), 4); // order was c, d, a(looked up at 3) → c goes
    expect(c.lookup('c', 5).state).toBe('miss');
    for (const h of ['a', 'd', 'e']) expect(c.lookup(h, 5).state).toBe('fresh');
  });

  it('re-storing an entry makes it most recent without evicting anything', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, fakeKey({ hash: h }), 0);
    c.store('a', fakeKey({ hash: 'a' }), 1);
    expect(c.size).toBe(3);
    expect(c.stats.evictions.capacity).toBe(0);
    c.store('d', fakeKey({ hash: 'd' }), 2);
    expect(c.lookup('b', 3).state).toBe('miss');
    expect(c.lookup('a', 3).state).toBe('fresh');
  });

  it('maxEntries 0 stores nothing', () => {
    const c = cache({ maxEntries: 0 });
    c.store('h', fakeKey(), 0);
    c.store('n', null, 0);
    expect(c.size).toBe(0);
    expect(c.lookup('h', 0)).toEqual({ state: 'miss' });
    expect(c.lookup('n', 0)).toEqual({ state: 'miss' });
  });

  it('maxEntries 1 keeps only the last entry', () => {
    const c = cache({ maxEntries: 1 });
    c.store('a', fakeKey(), 0);
    c.store('b', null, 0);
    expect(c.lookup('a', 0).state).toBe('miss');
    expect(c.lookup('b', 0)).toEqual({ state: 'fresh', key: null });
  });
});

describe('KeyCache.evict', () => {
  it('removes a positive or negative entry at once', () => {
    const c = cache();
    c.store('a', fakeKey(), 0);
    c.store('n', null, 0);
    c.evict('a');
    c.evict('n');
    expect(c.size).toBe(0);
    expect(c.lookup('a', 1)).toEqual({ state: 'miss' });
    expect(c.lookup('n', 1)).toEqual({ state: 'miss' });
    expect(c.stats.evictions.invalidated).toBe(2);
  });

  it('evicting an absent hash is a no-op and is not counted', () => {
    const c = cache();
    c.store('a', fakeKey(), 0);
    c.evict('zzz');
    expect(c.size).toBe(1);
    expect(c.stats.evictions.invalidated).toBe(0);
  });

  it('noteStaleHit counts stale entries served', () => {
    const c = cache();
    c.noteStaleHit();
    c.noteStaleHit();
    expect(c.stats.staleHits).toBe(2);
  });
});
