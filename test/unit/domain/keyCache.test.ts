import { BSON } from 'mongodb';
import { KeyCache, verifiedKey, type KeyCacheSettings } from '../../../src/domain/keyCache';
import { fakeKey } from './fakeKey';

const SETTINGS: KeyCacheSettings = { maxEntries: 3, negativeMaxEntries: 2, ttlMs: 1000, negativeTtlMs: 100 };
const cache = (over: Partial<KeyCacheSettings> = {}) => new KeyCache({ ...SETTINGS, ...over });
/** No change-log lag: every entry is trusted as far as the revocation bound goes. */
const ANY = -Infinity;

describe('KeyCache TTLs', () => {
  it('misses on an empty cache', () => {
    const c = cache();
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'miss' });
    expect(c.stats.misses).toBe(1);
  });

  it('a found key is served before the TTL, then dropped', () => {
    const c = cache();
    const key = fakeKey();
    c.store('h', key, 10_000);
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
    c.store('h', fakeKey(), 0);
    expect(c.lookup('h', 900, ANY).state).toBe('found');
    expect(c.lookup('h', 1000, ANY).state).toBe('miss');
  });

  it('storing again restarts the TTL', () => {
    const c = cache();
    c.store('h', fakeKey({ etag: 'old' }), 0);
    const newer = fakeKey({ etag: 'new' });
    c.store('h', newer, 800);
    expect(c.lookup('h', 1500, ANY)).toEqual({ state: 'found', key: newer });
    expect(c.size).toBe(1);
  });

  it('an absent entry uses the negative TTL', () => {
    const c = cache();
    c.store('h', null, 0);
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'absent' });
    expect(c.lookup('h', 99, ANY)).toEqual({ state: 'absent' });
    expect(c.lookup('h', 100, ANY)).toEqual({ state: 'miss' });
    expect(c.size).toBe(0);
  });

  it('a key found after being absent replaces the absent entry, and the other way round', () => {
    const c = cache();
    c.store('h', null, 0);
    const key = fakeKey();
    c.store('h', key, 1);
    expect(c.lookup('h', 2, ANY)).toEqual({ state: 'found', key });
    c.store('h', null, 3);
    expect(c.lookup('h', 4, ANY)).toEqual({ state: 'absent' });
    expect(c.size).toBe(1);
  });
});

describe('KeyCache: the revocation bound', () => {
  it('a found key read before trustReadsFrom is a miss, counted as unconfirmed, and kept', () => {
    const c = cache();
    const key = fakeKey();
    c.store('h', key, 100);
    expect(c.lookup('h', 500, 101)).toEqual({ state: 'miss' });
    expect(c.stats).toMatchObject({ hits: 0, misses: 0, unconfirmed: 1 });
    // Once the change log confirms the cache again, the same entry is served without a read.
    expect(c.lookup('h', 600, ANY)).toEqual({ state: 'found', key });
    expect(c.lookup('h', 700, 100)).toEqual({ state: 'found', key }); // read at 100: trusted from 100
  });

  it('absent entries are not subject to it (they fail closed)', () => {
    const c = cache();
    c.store('h', null, 0);
    expect(c.lookup('h', 50, 40)).toEqual({ state: 'absent' });
  });
});

describe('KeyCache LRU', () => {
  it('evicts the least recently stored found key beyond maxEntries', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c', 'd']) c.store(h, fakeKey({ hash: h }), 0);
    expect(c.size).toBe(3);
    expect(c.lookup('a', 1, ANY).state).toBe('miss');
    for (const h of ['b', 'c', 'd']) expect(c.lookup(h, 1, ANY).state).toBe('found');
    expect(c.stats.evictions.capacity).toBe(1);
  });

  it('a looked-up entry survives; the least recently used one goes', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, fakeKey({ hash: h }), 0);
    expect(c.lookup('a', 1, ANY).state).toBe('found'); // a is now most recently used; b is the LRU
    c.store('d', fakeKey({ hash: 'd' }), 2);
    expect(c.lookup('b', 3, ANY).state).toBe('miss');
    expect(c.lookup('a', 3, ANY).state).toBe('found');
    c.store('e', fakeKey({ hash: 'e' }), 4); // order was c, d, a(looked up at 3) → c goes
    expect(c.lookup('c', 5, ANY).state).toBe('miss');
    for (const h of ['a', 'd', 'e']) expect(c.lookup(h, 5, ANY).state).toBe('found');
  });

  it('re-storing an entry makes it most recent without evicting anything', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, fakeKey({ hash: h }), 0);
    c.store('a', fakeKey({ hash: 'a' }), 1);
    expect(c.size).toBe(3);
    expect(c.stats.evictions.capacity).toBe(0);
    c.store('d', fakeKey({ hash: 'd' }), 2);
    expect(c.lookup('b', 3, ANY).state).toBe('miss');
    expect(c.lookup('a', 3, ANY).state).toBe('found');
  });

  it('absent entries have their own LRU: any number of them never evicts a found key', () => {
    const c = cache();
    for (const h of ['a', 'b', 'c']) c.store(h, fakeKey({ hash: h }), 0);
    for (let i = 0; i < 1000; i++) c.store(`unknown ${i}`, null, 0);
    expect(c.size).toBe(3 + SETTINGS.negativeMaxEntries);
    for (const h of ['a', 'b', 'c']) expect(c.lookup(h, 1, ANY).state).toBe('found');
    expect(c.lookup('unknown 999', 1, ANY).state).toBe('absent');
    expect(c.lookup('unknown 997', 1, ANY).state).toBe('miss');
    expect(c.stats.evictions.capacity).toBe(1000 - SETTINGS.negativeMaxEntries);
  });

  it('maxEntries 0 stores no found keys, negativeMaxEntries 0 no absent ones', () => {
    const c = cache({ maxEntries: 0 });
    c.store('h', fakeKey(), 0);
    c.store('n', null, 0);
    expect(c.lookup('h', 0, ANY)).toEqual({ state: 'miss' });
    expect(c.lookup('n', 0, ANY)).toEqual({ state: 'absent' });
    const d = cache({ negativeMaxEntries: 0 });
    d.store('h', fakeKey(), 0);
    d.store('n', null, 0);
    expect(d.lookup('h', 0, ANY).state).toBe('found');
    expect(d.lookup('n', 0, ANY)).toEqual({ state: 'miss' });
  });
});

describe('KeyCache.evict and evictUnlessCurrent', () => {
  it('evict removes a found or absent entry at once; an absent hash is a no-op, not counted', () => {
    const c = cache();
    c.store('a', fakeKey(), 0);
    c.store('n', null, 0);
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
    c.store('current', fakeKey({ etag: 'e2' }), 0);
    c.store('older', fakeKey({ etag: 'e1' }), 0);
    c.evictUnlessCurrent('current', 'e2');
    c.evictUnlessCurrent('older', 'e2');
    expect(c.lookup('current', 1, ANY).state).toBe('found');
    expect(c.lookup('older', 1, ANY).state).toBe('miss');
    expect(c.stats.evictions.invalidated).toBe(1);
  });

  it('a deletion ("") evicts a found key and keeps an absent entry; a creation evicts an absent entry', () => {
    const c = cache();
    c.store('deleted', fakeKey(), 0);
    c.store('known absent', null, 0);
    c.store('created', null, 0);
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
  it('keeps only what Verify and API-key authentication use', () => {
    const doc = fakeKey({ scopes: ['read', 'write'], metadata: { team: 'a' }, rate_limit: { limit: 5, window_seconds: 60 } });
    expect(verifiedKey(doc)).toEqual({
      _id: doc._id,
      org_id: doc.org_id,
      workspace_id: null,
      scopes: ['read', 'write'],
      environment: 'live',
      expires_at: null,
      rate_limit: { limit: 5, window_seconds: 60 },
      metadata: { team: 'a' },
      created_by: doc.created_by,
      allow_self_revoke: false,
      status: 'active',
      etag: 'e1',
    });
  });

  it('shares one copy of a scope set across keys, even when each was decoded on its own', () => {
    const decoded = () => BSON.deserialize(BSON.serialize(fakeKey({ scopes: ['read', 'write'] }))) as ReturnType<typeof fakeKey>;
    const [a, b] = [verifiedKey(decoded()), verifiedKey(decoded())];
    expect(a.scopes).toBe(b.scopes);
    expect(Object.isFrozen(a.scopes)).toBe(true);
  });
});
