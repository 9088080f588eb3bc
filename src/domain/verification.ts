import { DomainError } from './errors';
import { hashSecret, parseSecret } from './keyFormat';
import type { KeyCache } from './keyCache';
import { keyState } from './keyState';
import type { RateDecision, RateLimiter } from './rateLimiter';
import type { UsageRecorder } from './usageRecorder';
import type { KeyDocument } from '../storage/documents';

export type VerifyCodeName =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'REVOKED'
  | 'ARCHIVED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE'
  | 'RATE_LIMITED';

export interface VerifyResult {
  code: VerifyCodeName;
  /** Present whenever the key was found, valid or not. */
  key?: KeyDocument;
  /** Present for keys with a rate limit that reached that check. */
  rate?: RateDecision;
}

export interface VerifierDeps {
  keyPrefix: string;
  findByHash: (hash: string) => Promise<KeyDocument | null>;
  now: () => Date;
  cache: KeyCache;
  usage: UsageRecorder;
  rateLimiter: RateLimiter;
  /**
   * False while the storage health check fails: stale entries are then served at once instead
   * of each waiting out a storage timeout first (uncached keys still try storage).
   */
  storageReachable?: () => boolean;
}

export interface VerifyOptions {
  /** Off for the interceptor's own API-key authentication: limits are for VerifyKey traffic. */
  enforceRateLimit?: boolean;
}

/**
 * Decides whether a presented secret is good. Checks run in this order and the first failure
 * is reported: MALFORMED → NOT_FOUND → REVOKED → ARCHIVED → EXPIRED → INSUFFICIENT_SCOPE →
 * RATE_LIMITED. Garbage never reaches storage; known and unknown hashes are cached; concurrent
 * misses of one hash share one read; usage is noted in memory only.
 */
export class Verifier {
  private readonly inFlight = new Map<string, Promise<KeyDocument | null>>();

  constructor(private readonly d: VerifierDeps) {}

  async verify(secret: string, requiredScopes: readonly string[], opts: VerifyOptions = {}): Promise<VerifyResult> {
    if (!parseSecret(secret, this.d.keyPrefix)) return { code: 'MALFORMED' };
    const hash = hashSecret(secret);
    const cached = this.d.cache.lookup(hash, this.d.now().getTime());
    let key: KeyDocument | null;
    if (cached.state === 'fresh') key = cached.key;
    else if (cached.state === 'stale' && this.d.storageReachable?.() === false) {
      this.d.cache.noteStaleHit();
      key = cached.key;
    } else key = await this.load(hash, cached.state === 'stale' ? cached.key : null);
    if (!key) return { code: 'NOT_FOUND' };
    const now = this.d.now();
    const state = keyState(key, now);
    if (state !== 'ACTIVE') return { code: state, key };
    if (!requiredScopes.every((s) => key.scopes.includes(s))) return { code: 'INSUFFICIENT_SCOPE', key };
    let rate: RateDecision | undefined;
    if (key.rate_limit && opts.enforceRateLimit !== false) {
      rate = this.d.rateLimiter.take(key._id, key.rate_limit.limit, key.rate_limit.window_seconds * 1000, now.getTime());
      if (!rate.allowed) return { code: 'RATE_LIMITED', key, rate };
    }
    this.d.usage.note(key._id, now);
    return { code: 'VALID', key, rate };
  }

  /** Call after a change made through this instance, before the RPC answers. */
  evict(hash: string): void {
    this.d.cache.evict(hash);
    // A read already in flight may predate the change: later calls start their own.
    this.inFlight.delete(hash);
  }

  private load(hash: string, stale: KeyDocument | null): Promise<KeyDocument | null> {
    let p = this.inFlight.get(hash);
    if (!p) {
      const read: Promise<KeyDocument | null> = this.d
        .findByHash(hash)
        .then((key) => {
          // Not cached if evict() ran meanwhile: the result may predate that change.
          if (this.inFlight.get(hash) === read) this.d.cache.store(hash, key, this.d.now().getTime());
          return key;
        })
        .finally(() => {
          if (this.inFlight.get(hash) === read) this.inFlight.delete(hash);
        });
      this.inFlight.set(hash, read);
      p = read;
    }
    return p.catch((err) => {
      // Storage trouble: a key seen recently keeps verifying for the stale window; anything
      // else fails closed.
      if (stale) {
        this.d.cache.noteStaleHit();
        return stale;
      }
      throw new DomainError('STORAGE_UNAVAILABLE', 'key storage is unreachable and this key is not cached; retry', [], {
        cause: (err as Error).name ?? 'Error',
      });
    });
  }
}
