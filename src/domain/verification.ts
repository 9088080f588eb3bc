import { DomainError } from './errors';
import { verifiedKey, type KeyCache, type VerifiedKey } from './keyCache';
import { keyState } from './keyState';
import type { UsageCode } from './model';
import type { KeyLookup } from './ports';
import type { RateDecision, RateLimiter } from './rateLimiter';
import { hashSecret } from './keyFormat';
import { classifySecret, formatOf, MAX_ANY_SECRET_LENGTH, type ForeignKeyFormat, type SecretFormats } from './secretFormats';
import type { UsageRecorder } from './usageRecorder';

/** Every result: the ones that name a key (counted as usage), and the two that name none. */
export type VerifyCodeName = UsageCode | 'MALFORMED' | 'NOT_FOUND';

export interface VerifyResult {
  code: VerifyCodeName;
  /** Present whenever the key was found, valid or not. */
  key?: VerifiedKey;
  /** Present for keys with a rate limit that reached that check. */
  rate?: RateDecision;
  /**
   * Present whenever the key was found: how long before this verification began the key's state
   * was last known current here (the start of the read that produced the entry, or of the last
   * change-log poll that confirmed it; 0 for a read this verification started). A caller caching
   * the answer dates it that much before its call.
   */
  stateAgeMs?: number;
}

export interface VerifierDeps {
  keyPrefix: string;
  /** Formats of imported keys (FOREIGN_KEY_FORMATS), tried after our own; default none. */
  foreignFormats?: readonly ForeignKeyFormat[];
  findByHash: KeyLookup;
  /** Epoch milliseconds (Date.now in production): the hot path makes no Date. */
  nowMs: () => number;
  cache: KeyCache;
  usage: UsageRecorder;
  rateLimiter: Pick<RateLimiter, 'take'>;
  /**
   * A cached key is used only while this instance knows it current as of at most this long ago:
   * its own read, or the start of a change-log poll that succeeded (see synced()). Past that,
   * Verify reads storage and, if storage fails, fails closed.
   */
  revocationBoundMs: number;
  /**
   * How long a version announced by the change log but not yet seen in storage keeps reads of
   * that key out of the cache (the positive TTL): a change logged but never landed stops
   * mattering after it.
   */
  announcementTtlMs: number;
  /**
   * Distinct keys read from storage at once, at most. Past it a miss answers STORAGE_UNAVAILABLE
   * at once: a database that has fallen behind gets no deeper queue of reads it cannot answer in
   * time (each one would only time out), and callers learn to retry now rather than at their deadline.
   */
  maxConcurrentReads: number;
}

export interface VerifyOptions {
  /** Off for the interceptor's own API-key authentication: limits are for VerifyKey traffic. */
  enforceRateLimit?: boolean;
}

const MALFORMED: VerifyResult = Object.freeze({ code: 'MALFORMED' });
const NOT_FOUND: VerifyResult = Object.freeze({ code: 'NOT_FOUND' });
const NO_OPTIONS: VerifyOptions = Object.freeze({});

/**
 * Decides whether a presented secret is good. Checks run in this order and the first failure
 * is reported: MALFORMED → NOT_FOUND → REVOKED → ARCHIVED → EXPIRED → INSUFFICIENT_SCOPE →
 * RATE_LIMITED. Garbage (in none of the accepted formats: formatOf) never reaches storage;
 * known and unknown hashes are cached; concurrent misses of one hash share one read; usage is
 * noted in memory only.
 */
export class Verifier {
  private readonly inFlight = new Map<string, Promise<VerifiedKey | null>>();
  /** Misses answered at once because maxConcurrentReads reads were already in flight (metrics read it). */
  shed = 0;
  /** Start of the last successful change-log poll: every change logged before it is applied here. */
  private syncedAt: number;
  /**
   * The latest version the change log announced per key, oldest first, kept for the positive TTL.
   * The log is written before the change lands, so a read between the two returns the older
   * version: it is answered but not cached. Also makes re-reads of the same entry no-ops.
   */
  private readonly announced = new Map<string, { etag: string; at: number }>();
  private readonly formats: SecretFormats;

  constructor(private readonly d: VerifierDeps) {
    this.formats = { keyPrefix: d.keyPrefix, foreign: d.foreignFormats ?? [] };
    // Nothing is cached yet, so nothing can be out of date.
    this.syncedAt = d.nowMs();
  }

  /**
   * The result, at once when no storage read is needed (garbage, or a key cached either way, without
   * a rate limit: the hot path makes no promise), or a promise of it when one is.
   */
  check(secret: string, requiredScopes: readonly string[], opts: VerifyOptions = NO_OPTIONS): VerifyResult | Promise<VerifyResult> {
    // Hashed first: a hash the cache holds came from a secret recognised when it was stored, so
    // only a secret it does not hold needs the format check (the hot path: a cached key skips it).
    if (typeof secret !== 'string' || secret.length > MAX_ANY_SECRET_LENGTH) return MALFORMED;
    const hash = hashSecret(secret);
    if (!this.d.cache.holds(hash) && formatOf(secret, this.formats) === null) return MALFORMED;
    const askedAt = this.d.nowMs();
    const cached = this.d.cache.lookup(hash, askedAt, this.trustReadsFrom(askedAt));
    // The key state's age is counted back from when this verification began (a caller dates the
    // answer from before its call). A cached entry is current as of its read, or of the last poll,
    // which would have dropped it had the key changed; a read's result only as of that read (a
    // poll may have dropped it meanwhile), which began then or, shared, a little earlier.
    if (cached.state === 'found') {
      return this.decide(cached.key, askedAt - Math.max(cached.key.read_at, this.syncedAt), askedAt, requiredScopes, opts);
    }
    if (cached.state === 'absent') return NOT_FOUND;
    return this.load(hash).then((key) => (key ? this.decide(key, askedAt - key.read_at, this.d.nowMs(), requiredScopes, opts) : NOT_FOUND));
  }

  /** check(), always as a promise. */
  async verify(secret: string, requiredScopes: readonly string[], opts: VerifyOptions = NO_OPTIONS): Promise<VerifyResult> {
    return this.check(secret, requiredScopes, opts);
  }

  /** The checks after NOT_FOUND, for a key whose state was current `age` ms before the verification began. */
  private decide(
    key: VerifiedKey,
    age: number,
    nowMs: number,
    requiredScopes: readonly string[],
    opts: VerifyOptions,
  ): VerifyResult | Promise<VerifyResult> {
    const stateAgeMs = Math.max(0, age);
    const state = keyState(key.status, key.expires_at_ms, nowMs);
    if (state !== 'ACTIVE') return this.counted(state, key, nowMs, stateAgeMs);
    for (const s of requiredScopes) if (!key.scopes.includes(s)) return this.counted('INSUFFICIENT_SCOPE', key, nowMs, stateAgeMs);
    if (key.rate_limit && opts.enforceRateLimit !== false) {
      // From memory, unless this instance's confirmed share of the limit is spent (RateLimiter).
      const decided = (rate: RateDecision) => this.counted(rate.allowed ? 'VALID' : 'RATE_LIMITED', key, nowMs, stateAgeMs, rate);
      const rate = this.d.rateLimiter.take(key._id, key.rate_limit.limit, key.rate_limit.window_seconds * 1000, nowMs);
      return rate instanceof Promise ? rate.then(decided) : decided(rate);
    }
    return this.counted('VALID', key, nowMs, stateAgeMs);
  }

  /** Every result that names a key is usage of it, noted in memory (GetKeyUsage counts them by code). */
  private counted(code: UsageCode, key: VerifiedKey, nowMs: number, stateAgeMs: number, rate?: RateDecision): VerifyResult {
    this.d.usage.note({ keyId: key._id, orgId: key.org_id, code }, nowMs);
    return { code, key, rate, stateAgeMs };
  }

  /**
   * The storage lookup key of a presented secret; null when it is not shaped like a key (no I/O).
   * LookupKey and ReportLeakedKeys recognise secrets with it; check() decides the same, hashing first.
   */
  lookupHash(secret: string): string | null {
    return classifySecret(secret, this.formats)?.hash ?? null;
  }

  /** Call after a change made through this instance, before the RPC answers. */
  evict(hash: string): void {
    this.d.cache.evict(hash);
    // A read already in flight may predate the change: later calls start their own.
    this.inFlight.delete(hash);
  }

  /**
   * One change-log entry (a change made anywhere, possibly not landed yet): drops the cached
   * entry unless it already is version `etag` ("" for deleted), and any read in flight, whose
   * result may predate the change. An entry seen before (polls re-read a margin) changes nothing:
   * reads started since are checked against it when they end.
   */
  invalidate(hash: string, etag: string): void {
    if (this.announced.get(hash)?.etag === etag) return;
    this.d.cache.evictUnlessCurrent(hash, etag);
    this.inFlight.delete(hash);
    const now = this.d.nowMs();
    this.announced.delete(hash);
    this.announced.set(hash, { etag, at: now });
    for (const [h, a] of this.announced) {
      if (now - a.at < this.d.announcementTtlMs) break;
      this.announced.delete(h);
    }
  }

  /** A change-log poll that started at `startedAt` succeeded: cached keys are current as of then. */
  synced(startedAt: number): void {
    this.syncedAt = Math.max(this.syncedAt, startedAt);
  }

  /** How long ago the last successful change-log poll started. */
  lagMs(): number {
    return this.d.nowMs() - this.syncedAt;
  }

  /** While the log is behind the bound, only entries read within the bound are trusted. */
  private trustReadsFrom(now: number): number {
    return now - this.syncedAt <= this.d.revocationBoundMs ? -Infinity : now - this.d.revocationBoundMs;
  }

  /** False while the log announced a version of `hash` other than the one read (not landed yet, or never). */
  private settled(hash: string, key: VerifiedKey | null): boolean {
    const a = this.announced.get(hash);
    return !a || a.etag === (key?.etag ?? '') || this.d.nowMs() - a.at >= this.d.announcementTtlMs;
  }

  private load(hash: string): Promise<VerifiedKey | null> {
    let p = this.inFlight.get(hash);
    if (!p && this.inFlight.size >= this.d.maxConcurrentReads) {
      this.shed++;
      return Promise.reject(
        new DomainError('STORAGE_UNAVAILABLE', 'key storage is saturated and this key cannot be confirmed now; retry', [], {
          cause: 'TooManyReads',
          max_concurrent_reads: String(this.d.maxConcurrentReads),
        }),
      );
    }
    if (!p) {
      const readAt = this.d.nowMs();
      const read: Promise<VerifiedKey | null> = this.d
        .findByHash(hash)
        .then((doc) => {
          const key = doc && verifiedKey(doc, readAt);
          // Not cached if evict() or invalidate() ran meanwhile: the result may predate that change.
          if (this.inFlight.get(hash) === read && this.settled(hash, key)) {
            if (key) this.d.cache.store(hash, key);
            else this.d.cache.storeAbsent(hash, readAt);
          }
          return key;
        })
        .finally(() => {
          if (this.inFlight.get(hash) === read) this.inFlight.delete(hash);
        });
      this.inFlight.set(hash, read);
      p = read;
    }
    return p.catch((err: unknown) => {
      throw new DomainError('STORAGE_UNAVAILABLE', 'key storage is unreachable and this key cannot be confirmed now; retry', [], {
        cause: err instanceof Error ? err.name : 'Error',
      });
    });
  }
}
