import type { StoredKey } from './model';

/**
 * What the lookup by hash reads: the stored fields Verify answers and decides with, and what
 * API-key authentication needs — never the whole document (names, masks, audit fields, sealed
 * secrets).
 */
export type VerifiedKeyFields = Readonly<
  Pick<
    StoredKey,
    | '_id'
    | 'org_id'
    | 'workspace_id'
    | 'scopes'
    | 'environment'
    | 'expires_at'
    | 'rate_limit'
    | 'metadata'
    | 'created_by'
    | 'allow_self_revoke'
    | 'status'
    | 'etag'
  >
>;

/**
 * A Verify cache entry: those fields in their most compact form, and when the read that produced
 * them started. One object per entry (no wrapper), expiry as epoch milliseconds (a Date costs
 * ~110 bytes of heap, a number 16), and values that repeat across keys shared.
 */
export interface VerifiedKey {
  readonly _id: string;
  readonly org_id: string;
  readonly workspace_id: string | null;
  /** Frozen and shared between entries (typed mutable only because generated messages are). */
  readonly scopes: string[];
  readonly environment: StoredKey['environment'];
  readonly expires_at_ms: number | null;
  readonly rate_limit: Readonly<NonNullable<StoredKey['rate_limit']>> | null;
  /** Frozen, and shared between entries where it repeats. */
  readonly metadata: Record<string, string>;
  readonly created_by: string;
  readonly allow_self_revoke: boolean;
  readonly status: StoredKey['status'];
  readonly etag: string;
  /** When the storage read that produced it started: the entry is current as of then. */
  readonly read_at: number;
}

const STATUSES = { active: 'active', archived: 'archived', revoked: 'revoked' } as const;
const ENVIRONMENTS = { live: 'live', test: 'test' } as const;
const NO_METADATA: Record<string, string> = Object.freeze({});

/**
 * Keeps one frozen copy of each distinct value (scope sets, rate limits, metadata maps), up to
 * `max` distinct values: keys share a few of each, and each decoded document brings its own copy.
 */
class Interned<T> {
  private readonly values = new Map<string, T>();
  constructor(private readonly max: number) {}

  get(id: string, make: () => T): T {
    let v = this.values.get(id);
    if (v === undefined) {
      v = Object.freeze(make());
      if (this.values.size < this.max) this.values.set(id, v);
    }
    return v;
  }
}

const scopeSets = new Interned<string[]>(1_000);
const rateLimits = new Interned<{ limit: number; window_seconds: number }>(1_000);
/** Metadata is often per key (then each entry keeps its own) and often labels like a tier or team. */
const metadataMaps = new Interned<Record<string, string>>(10_000);
/** Larger metadata is kept per entry rather than held by the shared table for the process's life. */
const MAX_SHARED_METADATA_CHARS = 256;

function sharedMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  if (!metadata) return NO_METADATA;
  const keys = Object.keys(metadata);
  if (keys.length === 0) return NO_METADATA;
  const id = JSON.stringify(keys.map((k) => [k, metadata[k]]));
  // The decoded object itself is kept (frozen): a frozen copy made by spreading costs twice the heap.
  return id.length > MAX_SHARED_METADATA_CHARS ? Object.freeze(metadata) : metadataMaps.get(id, () => metadata);
}

/** The cache entry for a key read by a lookup that started at `readAt`. */
export function verifiedKey(doc: VerifiedKeyFields, readAt: number): VerifiedKey {
  const rate = doc.rate_limit;
  return {
    _id: doc._id,
    org_id: doc.org_id,
    workspace_id: doc.workspace_id ?? null,
    scopes: scopeSets.get(doc.scopes.join('\n'), () => [...doc.scopes]),
    environment: ENVIRONMENTS[doc.environment],
    expires_at_ms: doc.expires_at ? doc.expires_at.getTime() : null,
    rate_limit: rate
      ? rateLimits.get(`${rate.limit}/${rate.window_seconds}`, () => ({ limit: rate.limit, window_seconds: rate.window_seconds }))
      : null,
    metadata: sharedMetadata(doc.metadata),
    created_by: doc.created_by,
    allow_self_revoke: doc.allow_self_revoke,
    status: STATUSES[doc.status],
    etag: doc.etag,
    read_at: readAt,
  };
}

export interface KeyCacheSettings {
  /** Found keys (LRU). */
  maxEntries: number;
  /** "No such key" entries, in an LRU of their own: a flood of unknown keys never evicts found ones. */
  negativeMaxEntries: number;
  /** How long a found key is trusted without re-reading storage (the second line behind the change log). */
  ttlMs: number;
  /** How long "no such key" is trusted; short, so floods of bad keys stay off MongoDB. */
  negativeTtlMs: number;
}

/** What a cache holds for a found key: at least when the read that produced it started. */
export interface CachedEntry {
  readonly read_at: number;
}

export type CacheLookup<E extends CachedEntry = VerifiedKey> = { state: 'found'; key: E } | { state: 'absent' } | { state: 'miss' };

/** Running totals since start; metrics read them at scrape time (no callback on the hot path). */
export interface KeyCacheStats {
  hits: number;
  misses: number;
  /** Found keys not used because nothing confirmed them within the revocation bound: re-read instead. */
  unconfirmed: number;
  evictions: { capacity: number; invalidated: number; expired: number };
}

/** Evicts the least recently used entries of `map` beyond `max`; returns how many went. */
function trim(map: Map<string, unknown>, max: number): number {
  let n = 0;
  for (const hash of map.keys()) {
    if (map.size <= max) break;
    map.delete(hash);
    n++;
  }
  return n;
}

/**
 * How often at most a hit moves an entry to the most recent end. Moving it (delete + set) was a
 * fixed cost of every cached VerifyKey (~0.4 µs); a key hit again within this interval keeps its
 * place, so eviction order is least recently used to within this interval.
 */
export const RECENCY_INTERVAL_MS = 1000;

/**
 * Two LRU + TTL caches by secret hash: found keys, and hashes storage does not know. A Map keeps
 * insertion order, so re-inserting on access makes the first entry the least recently used one
 * (at most once per entry and RECENCY_INTERVAL_MS: see refresh).
 * Verify's cache holds VerifiedKeys; the client's (src/client/verifier.ts) holds what VerifyKey answered.
 */
export class KeyCache<E extends CachedEntry = VerifiedKey> {
  private readonly found = new Map<string, E>();
  /** hash → when the read that found nothing started. */
  private readonly absent = new Map<string, number>();
  readonly stats: KeyCacheStats = { hits: 0, misses: 0, unconfirmed: 0, evictions: { capacity: 0, invalidated: 0, expired: 0 } };
  /** Hashes moved to the most recent end since `refreshedSince`: at most one entry per hash of either map. */
  private readonly refreshed = new Set<string>();
  private refreshedSince = -Infinity;

  constructor(private readonly s: KeyCacheSettings) {}

  get size(): number {
    return this.found.size + this.absent.size;
  }

  /** Whether an entry for `hash` is held, current or not (nothing counted, nothing moved). */
  holds(hash: string): boolean {
    return this.found.has(hash) || this.absent.has(hash);
  }

  /**
   * A found key read before `trustReadsFrom` is reported as a miss (and kept: a later successful
   * change-log poll confirms it again).
   */
  lookup(hash: string, now: number, trustReadsFrom: number): CacheLookup<E> {
    const e = this.found.get(hash);
    if (e) {
      if (now - e.read_at >= this.s.ttlMs) {
        this.found.delete(hash);
        this.stats.evictions.expired++;
      } else if (e.read_at < trustReadsFrom) {
        this.stats.unconfirmed++;
        return { state: 'miss' };
      } else {
        this.refresh(this.found, hash, e, now);
        this.stats.hits++;
        return { state: 'found', key: e };
      }
    }
    const absentAt = this.absent.get(hash);
    if (absentAt !== undefined) {
      if (now - absentAt < this.s.negativeTtlMs) {
        this.refresh(this.absent, hash, absentAt, now);
        this.stats.hits++;
        return { state: 'absent' };
      }
      this.absent.delete(hash);
      this.stats.evictions.expired++;
    }
    this.stats.misses++;
    return { state: 'miss' };
  }

  /**
   * Moves a hit entry to the most recent end, unless it was moved there less than
   * RECENCY_INTERVAL_MS ago. The record of moves starts over each interval (or if the clock went
   * back), and when it holds as many hashes as both maps can: it stays within the caches' size.
   */
  private refresh<V>(map: Map<string, V>, hash: string, value: V, now: number): void {
    if (
      now - this.refreshedSince >= RECENCY_INTERVAL_MS ||
      now < this.refreshedSince ||
      this.refreshed.size >= this.s.maxEntries + this.s.negativeMaxEntries
    ) {
      this.refreshed.clear();
      this.refreshedSince = now;
    } else if (this.refreshed.has(hash)) {
      return;
    }
    map.delete(hash);
    map.set(hash, value);
    this.refreshed.add(hash);
  }

  /** Stores a key storage returned (current as of its `read_at`). */
  store(hash: string, key: E): void {
    this.put(this.found, this.s.maxEntries, hash, key);
  }

  /** Stores that storage knew no key with this hash in a read that started at `readAt`. */
  storeAbsent(hash: string, readAt: number): void {
    this.put(this.absent, this.s.negativeMaxEntries, hash, readAt);
  }

  /** A hash is in at most one of the two maps: the latest read decides which. */
  private put<V>(map: Map<string, V>, max: number, hash: string, value: V): void {
    this.found.delete(hash);
    this.absent.delete(hash);
    if (max <= 0) return;
    map.set(hash, value);
    this.stats.evictions.capacity += trim(map, max);
  }

  evict(hash: string): void {
    if (this.found.delete(hash) || this.absent.delete(hash)) this.stats.evictions.invalidated++;
  }

  /** Drops a "no such key" entry: the key exists now (it was just created). A found entry stays. */
  evictAbsent(hash: string): void {
    if (this.absent.delete(hash)) this.stats.evictions.invalidated++;
  }

  /** Drops everything (a client whose change feed could not tell it what it missed). */
  clear(): void {
    this.stats.evictions.invalidated += this.size;
    this.found.clear();
    this.absent.clear();
  }

  /**
   * For the change log: evicts unless the entry already is version `etag` — a found key with that
   * etag, or, for "" (deleted), an absent one. Every change sets a new etag.
   */
  evictUnlessCurrent(this: KeyCache, hash: string, etag: string): void {
    if (etag === '' ? this.absent.has(hash) : this.found.get(hash)?.etag === etag) return;
    this.evict(hash);
  }
}
