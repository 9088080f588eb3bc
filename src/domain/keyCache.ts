import type { StoredKey } from './model';

/**
 * What Verify answers and decides with, and what API-key authentication needs: a cache entry
 * holds these fields only, never the whole document (names, masks, audit fields, sealed secrets).
 */
export type VerifiedKey = Readonly<
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

const STATUSES = { active: 'active', archived: 'archived', revoked: 'revoked' } as const;
const ENVIRONMENTS = { live: 'live', test: 'test' } as const;
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});
/** Keys share a few scope sets; each distinct set is kept once, up to this many sets. */
const MAX_SCOPE_SETS = 1_000;
const scopeSets = new Map<string, string[]>();

function sharedScopes(scopes: string[]): string[] {
  const id = scopes.join('\n');
  let set = scopeSets.get(id);
  if (!set) {
    set = Object.freeze([...scopes]) as string[];
    if (scopeSets.size < MAX_SCOPE_SETS) scopeSets.set(id, set);
  }
  return set;
}

/**
 * The cache's copy of a stored key. Strings that repeat across keys (status, environment, scope
 * sets, empty metadata) are shared instead of each entry holding its own decoded copy.
 */
export function verifiedKey(doc: VerifiedKey): VerifiedKey {
  return {
    _id: doc._id,
    org_id: doc.org_id,
    workspace_id: doc.workspace_id ?? null,
    scopes: sharedScopes(doc.scopes),
    environment: ENVIRONMENTS[doc.environment],
    expires_at: doc.expires_at ?? null,
    rate_limit: doc.rate_limit ? { limit: doc.rate_limit.limit, window_seconds: doc.rate_limit.window_seconds } : null,
    metadata: doc.metadata && Object.keys(doc.metadata).length > 0 ? doc.metadata : NO_METADATA,
    created_by: doc.created_by,
    allow_self_revoke: doc.allow_self_revoke === true,
    status: STATUSES[doc.status],
    etag: doc.etag,
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

export type CacheLookup = { state: 'found'; key: VerifiedKey } | { state: 'absent' } | { state: 'miss' };

/** Running totals since start; metrics read them at scrape time (no callback on the hot path). */
export interface KeyCacheStats {
  hits: number;
  misses: number;
  /** Found keys not used because nothing confirmed them within the revocation bound: re-read instead. */
  unconfirmed: number;
  evictions: { capacity: number; invalidated: number; expired: number };
}

interface FoundEntry {
  key: VerifiedKey;
  /** When the storage read that produced it started: the entry is current as of then. */
  readAt: number;
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
 * Two LRU + TTL caches by secret hash: found keys, and hashes storage does not know. A Map keeps
 * insertion order, so re-inserting on access makes the first entry the least recently used one.
 */
export class KeyCache {
  private readonly found = new Map<string, FoundEntry>();
  /** hash → when the read that found nothing started. */
  private readonly absent = new Map<string, number>();
  readonly stats: KeyCacheStats = { hits: 0, misses: 0, unconfirmed: 0, evictions: { capacity: 0, invalidated: 0, expired: 0 } };

  constructor(private readonly s: KeyCacheSettings) {}

  get size(): number {
    return this.found.size + this.absent.size;
  }

  /**
   * A found key read before `trustReadsFrom` is reported as a miss (and kept: a later successful
   * change-log poll confirms it again).
   */
  lookup(hash: string, now: number, trustReadsFrom: number): CacheLookup {
    const e = this.found.get(hash);
    if (e) {
      if (now - e.readAt >= this.s.ttlMs) {
        this.found.delete(hash);
        this.stats.evictions.expired++;
      } else if (e.readAt < trustReadsFrom) {
        this.stats.unconfirmed++;
        return { state: 'miss' };
      } else {
        this.found.delete(hash);
        this.found.set(hash, e);
        this.stats.hits++;
        return { state: 'found', key: e.key };
      }
    }
    const absentAt = this.absent.get(hash);
    if (absentAt !== undefined) {
      if (now - absentAt < this.s.negativeTtlMs) {
        this.absent.delete(hash);
        this.absent.set(hash, absentAt);
        this.stats.hits++;
        return { state: 'absent' };
      }
      this.absent.delete(hash);
      this.stats.evictions.expired++;
    }
    this.stats.misses++;
    return { state: 'miss' };
  }

  /** Stores what a storage read that started at `readAt` returned (null: no such key). */
  store(hash: string, key: VerifiedKey | null, readAt: number): void {
    this.found.delete(hash);
    this.absent.delete(hash);
    if (key) {
      if (this.s.maxEntries <= 0) return;
      this.found.set(hash, { key, readAt });
      this.stats.evictions.capacity += trim(this.found, this.s.maxEntries);
    } else {
      if (this.s.negativeMaxEntries <= 0) return;
      this.absent.set(hash, readAt);
      this.stats.evictions.capacity += trim(this.absent, this.s.negativeMaxEntries);
    }
  }

  evict(hash: string): void {
    if (this.found.delete(hash) || this.absent.delete(hash)) this.stats.evictions.invalidated++;
  }

  /**
   * For the change log: evicts unless the entry already is version `etag` — a found key with that
   * etag, or, for "" (deleted), an absent one. Every change sets a new etag.
   */
  evictUnlessCurrent(hash: string, etag: string): void {
    if (etag === '' ? this.absent.has(hash) : this.found.get(hash)?.key.etag === etag) return;
    this.evict(hash);
  }
}
