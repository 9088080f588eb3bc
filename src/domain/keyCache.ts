import type { KeyDocument } from '../storage/documents';

export interface KeyCacheSettings {
  maxEntries: number;
  /** How long a found key is trusted without re-reading storage. */
  ttlMs: number;
  /** How long "no such key" is trusted; short, so floods of bad keys stay off MongoDB. */
  negativeTtlMs: number;
  /** How long past its TTL a found key may still be used while storage is unreachable. */
  staleWindowMs: number;
}

export type CacheLookup =
  | { state: 'fresh'; key: KeyDocument | null }
  | { state: 'stale'; key: KeyDocument }
  | { state: 'miss' };

/** Running totals since start; metrics read them at scrape time (no callback on the hot path). */
export interface KeyCacheStats {
  hits: number;
  /** Served past the TTL because storage was unreachable. */
  staleHits: number;
  misses: number;
  evictions: { capacity: number; invalidated: number; expired: number };
}

interface Entry {
  key: KeyDocument | null;
  storedAt: number;
}

/**
 * LRU + TTL cache of key documents by secret hash, with negative entries (key: null).
 * A Map keeps insertion order, so re-inserting on access makes the first entry the LRU one.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  readonly stats: KeyCacheStats = { hits: 0, staleHits: 0, misses: 0, evictions: { capacity: 0, invalidated: 0, expired: 0 } };

  constructor(private readonly s: KeyCacheSettings) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(hash: string, now: number): CacheLookup {
    const e = this.entries.get(hash);
    if (!e) {
      this.stats.misses++;
      return { state: 'miss' };
    }
    const age = now - e.storedAt;
    const ttl = e.key ? this.s.ttlMs : this.s.negativeTtlMs;
    if (age < ttl) {
      this.entries.delete(hash);
      this.entries.set(hash, e);
      this.stats.hits++;
      return { state: 'fresh', key: e.key };
    }
    if (e.key && age < ttl + this.s.staleWindowMs) {
      // The caller re-reads storage and uses this entry only if that fails.
      this.stats.misses++;
      return { state: 'stale', key: e.key };
    }
    this.entries.delete(hash);
    this.stats.evictions.expired++;
    this.stats.misses++;
    return { state: 'miss' };
  }

  store(hash: string, key: KeyDocument | null, now: number): void {
    if (this.s.maxEntries <= 0) return;
    this.entries.delete(hash);
    this.entries.set(hash, { key, storedAt: now });
    while (this.entries.size > this.s.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
      this.stats.evictions.capacity++;
    }
  }

  evict(hash: string): void {
    if (this.entries.delete(hash)) this.stats.evictions.invalidated++;
  }

  /** For change polling: evicts unless the cached key already is version `etag` (every change sets a new etag). */
  evictUnlessCurrent(hash: string, etag: string): void {
    const e = this.entries.get(hash);
    if (!e || (e.key && e.key.etag === etag)) return;
    this.entries.delete(hash);
    this.stats.evictions.invalidated++;
  }

  /** Counts a stale entry actually served because storage failed (see Verifier). */
  noteStaleHit(): void {
    this.stats.staleHits++;
  }
}
