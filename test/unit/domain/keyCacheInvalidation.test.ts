import { KeyCache } from '../../../src/domain/keyCache';
import { fakeKey } from './fakeKey';

const cache = () => new KeyCache({ maxEntries: 10, ttlMs: 1000, negativeTtlMs: 100, staleWindowMs: 500 });

/** Change polling re-reads a margin: an entry that already is the version read must stay. */
describe('KeyCache.evictUnlessCurrent', () => {
  it('keeps an entry that already is the changed version', () => {
    const c = cache();
    c.store('h', fakeKey({ etag: 'e2' }), 0);
    c.evictUnlessCurrent('h', 'e2');
    expect(c.lookup('h', 1)).toMatchObject({ state: 'fresh' });
    expect(c.stats.evictions.invalidated).toBe(0);
  });

  it('evicts an entry older than the changed version (a revocation elsewhere)', () => {
    const c = cache();
    c.store('h', fakeKey({ etag: 'e1' }), 0);
    c.evictUnlessCurrent('h', 'e2');
    expect(c.lookup('h', 1)).toEqual({ state: 'miss' });
    expect(c.stats.evictions.invalidated).toBe(1);
  });

  it('evicts a negative entry for a hash that now exists, and ignores hashes it does not hold', () => {
    const c = cache();
    c.store('h', null, 0);
    c.evictUnlessCurrent('h', 'e1');
    c.evictUnlessCurrent('other', 'e1');
    expect(c.size).toBe(0);
    expect(c.stats.evictions.invalidated).toBe(1);
  });
});
