/**
 * KeyVerifier: VerifyKey's answers, cached in the calling process and kept current by
 * WatchKeyChanges, so a service verifies most keys without a network round trip and still
 * stops accepting a key within the revocation bound (1 s) of its end. Exported as
 * `apikeys/client`; imports only client code, generated messages and pure domain functions.
 */
import { credentials, status, type ChannelCredentials, type ChannelOptions, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { KeyCache, type KeyCacheStats } from '../domain/keyCache';
import { isValidPrefix, PREFIX_RULE } from '../domain/keyFormat';
import { classifySecret, compileForeignFormats, type ForeignKeyFormatSpec, type SecretFormats } from '../domain/secretFormats';
import { KeyChangeKind, VerifyServiceClient, type KeyUsage, type VerifyKeyResponse } from '../gen/apikeys/v1/verify_service';
import {
  answerCurrentAt,
  cachedAnswer,
  decide,
  MALFORMED,
  NOT_FOUND,
  toVerifierResult,
  type CachedAnswer,
  type VerifierResult,
} from './answers';
import { Backoff } from './backoff';
import { KeyFeed, type ClearReason } from './keyFeed';
import { bearer } from './promiseClient';
import { UsageReporter } from './usageReporter';

export type { VerifierCode, VerifierResult } from './answers';
export type { ForeignKeyFormatSpec } from '../domain/secretFormats';

/** Refusals a retry cannot fix: a usage batch refused with one of these is dropped. */
const FINAL_CODES: readonly number[] = [status.INVALID_ARGUMENT, status.PERMISSION_DENIED, status.UNAUTHENTICATED, status.UNIMPLEMENTED];

const CHANGE_KINDS: Partial<Record<KeyChangeKind, 'created' | 'changed' | 'deleted'>> = {
  [KeyChangeKind.KEY_CHANGE_KIND_CREATED]: 'created',
  [KeyChangeKind.KEY_CHANGE_KIND_CHANGED]: 'changed',
  [KeyChangeKind.KEY_CHANGE_KIND_DELETED]: 'deleted',
};

/** What the change feed did, for logs and metrics. */
export type FeedNotice =
  | { type: 'change'; keyId: string; kind: 'created' | 'changed' | 'deleted' }
  | { type: 'cleared'; reason: ClearReason }
  | { type: 'heartbeat' }
  | { type: 'disconnected'; error?: Error; retryInMs: number };

export interface KeyVerifierOptions {
  /** host:port of the apikeys service (or its load balancer). */
  address: string;
  /** A service credential (one of the server's VERIFY_TOKENS). */
  token: string;
  /** The deployment's KEY_PREFIX; default "sk". The constructor throws on one KEY_PREFIX could not be. */
  keyPrefix?: string;
  /**
   * The deployment's FOREIGN_KEY_FORMATS (the same objects), so imported keys are not refused
   * locally as MALFORMED; default none. The constructor throws on an invalid one.
   */
  foreignFormats?: readonly ForeignKeyFormatSpec[];
  /** Default: insecure (plaintext), as for a sidecar or a mesh that adds TLS. */
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /** The promise kept: a key ended anywhere stops verifying here within this. Default 1000. */
  revocationBoundMs?: number;
  /** Found keys kept (LRU) and how long (ms); defaults 100 000 and 60 000. */
  cacheMaxEntries?: number;
  cacheTtlMs?: number;
  /** Unknown keys kept (their own LRU) and how long (ms); defaults 10 000 and 10 000. */
  negativeCacheMaxEntries?: number;
  negativeTtlMs?: number;
  /**
   * After the feed names a key, answers about it are not cached for this long (ms, default 5000):
   * the server logs a change just before it lands, so an answer read in between is the old version.
   */
  settleMs?: number;
  /** Deadline of each VerifyKey and ReportUsage call (ms); default 2000. */
  callTimeoutMs?: number;
  /** How often usage answered from the cache is reported (ms, default 10 000), and after how many distinct keys sooner (default 1000). */
  usageFlushIntervalMs?: number;
  usageMaxPendingKeys?: number;
  /** Reconnection backoff of the change feed (ms): first delay and cap; defaults 100 and 5000. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  onFeed?: (notice: FeedNotice) => void;
  /** A usage report failed (it is retried with the next one unless the server refused it for good). */
  onUsageReportError?: (err: unknown) => void;
}

/**
 * Verifies API keys like VerifyKey, from a local cache when it can:
 * - garbage (in none of the deployment's formats: wrong shape, prefix or checksum) is MALFORMED without a call;
 * - found and unknown keys are cached (LRU + TTL), one call per key at a time;
 * - the change feed (WatchKeyChanges) drops changed keys, and a RESET drops everything;
 * - while the feed cannot vouch for the cache (down, silent, or its server's own view of the
 *   change log is behind), a cached answer is used at most revocationBoundMs after the server
 *   last knew the key's state current (its call's start less the age the server gave);
 * - keys with a rate limit are always decided by the server;
 * - VALID answers from the cache are reported with ReportUsage, in batches.
 * Fails closed: when the server cannot be reached, verify() rejects (with the gRPC error).
 */
export class KeyVerifier {
  /** The underlying client, for calls the verifier does not make itself. */
  readonly grpc: VerifyServiceClient;
  private readonly cache: KeyCache<CachedAnswer>;
  private readonly feed: KeyFeed;
  private readonly usage: UsageReporter;
  private readonly metadata: Metadata;
  private readonly formats: SecretFormats;
  private readonly boundMs: number;
  private readonly settleMs: number;
  private readonly callTimeoutMs: number;
  /** One call per key at a time: later callers share its answer. */
  private readonly inFlight = new Map<string, Promise<CachedAnswer | null | undefined>>();
  /** Keys the feed named lately, oldest first: answers about them are not cached until they settle. */
  private readonly announced = new Map<string, number>();
  /** The feed's server had sent every change made before this (this process's clock). */
  private confirmedAt = -Infinity;
  private closing?: Promise<void>;
  /** Answers given from the cache, and calls made to the server. */
  readonly stats = { local: 0, remote: 0 };

  constructor(private readonly o: KeyVerifierOptions) {
    const foreign = compileForeignFormats(o.foreignFormats ?? []);
    if (foreign.problems.length > 0) throw new TypeError(`KeyVerifier: invalid foreignFormats: ${foreign.problems.join('; ')}`);
    const keyPrefix = o.keyPrefix ?? 'sk';
    // A prefix the server could never have (KEY_PREFIX has the same rule) would refuse every key locally as MALFORMED.
    if (!isValidPrefix(keyPrefix)) {
      throw new TypeError(`KeyVerifier: invalid keyPrefix ${JSON.stringify(keyPrefix)}: ${PREFIX_RULE}, as the server's KEY_PREFIX`);
    }
    this.formats = { keyPrefix, foreign: foreign.formats };
    this.boundMs = o.revocationBoundMs ?? 1_000;
    this.settleMs = o.settleMs ?? 5_000;
    this.callTimeoutMs = o.callTimeoutMs ?? 2_000;
    this.metadata = bearer(o.token);
    this.grpc = new VerifyServiceClient(o.address, o.credentials ?? credentials.createInsecure(), o.channelOptions);
    this.cache = new KeyCache<CachedAnswer>({
      maxEntries: o.cacheMaxEntries ?? 100_000,
      ttlMs: o.cacheTtlMs ?? 60_000,
      negativeMaxEntries: o.negativeCacheMaxEntries ?? 10_000,
      negativeTtlMs: o.negativeTtlMs ?? 10_000,
    });
    this.usage = new UsageReporter({
      flushIntervalMs: o.usageFlushIntervalMs ?? 10_000,
      maxPendingKeys: o.usageMaxPendingKeys ?? 1_000,
      send: (entries) => this.reportUsage(entries),
      retryable: (err) => !FINAL_CODES.includes((err as Partial<ServiceError>).code ?? -1),
      onError: (err) => o.onUsageReportError?.(err),
      now: Date.now,
    });
    this.feed = new KeyFeed(
      (position, handlers) => {
        const stream = this.grpc.watchKeyChanges({ position }, this.metadata.clone());
        stream.on('data', (m: Parameters<typeof handlers.message>[0]) => handlers.message(m));
        stream.on('error', (err: Error) => handlers.ended(err));
        stream.on('end', () => handlers.ended());
        return stream;
      },
      {
        changed: (hash, keyId, kind) => this.changed(hash, keyId, kind),
        cleared: (reason) => {
          this.cache.clear();
          this.inFlight.clear();
          o.onFeed?.({ type: 'cleared', reason });
        },
        confirmed: (asOf) => {
          this.confirmedAt = Math.max(this.confirmedAt, asOf);
          o.onFeed?.({ type: 'heartbeat' });
        },
        disconnected: (error, retryInMs) => o.onFeed?.({ type: 'disconnected', error, retryInMs }),
      },
      {
        backoff: new Backoff({ initialMs: o.reconnectInitialMs ?? 100, maxMs: o.reconnectMaxMs ?? 5_000 }),
        initialSilenceMs: 3_000,
        minSilenceMs: 1_000,
        now: Date.now,
      },
    );
    this.feed.start();
    this.usage.start();
  }

  /** Entries cached, and hits, misses and evictions since start. */
  get cacheStats(): { size: number } & KeyCacheStats {
    return { size: this.cache.size, ...this.cache.stats };
  }

  verify(secret: string, requiredScopes: readonly string[] = []): Promise<VerifierResult> {
    if (this.closing) return Promise.reject(new Error('KeyVerifier is closed'));
    const local = this.answerLocally(secret, requiredScopes);
    return typeof local === 'string' ? this.ask(secret, local, requiredScopes) : Promise.resolve(local);
  }

  /**
   * verify()'s answer at once, without a promise, when it needs no call: garbage, or a key whose
   * cached answer decides these scopes (counted and reported like verify()'s). Undefined when
   * only the server can answer: then call verify().
   */
  verifyCached(secret: string, requiredScopes: readonly string[] = []): VerifierResult | undefined {
    if (this.closing) throw new Error('KeyVerifier is closed');
    const local = this.answerLocally(secret, requiredScopes);
    return typeof local === 'string' ? undefined : local;
  }

  /** The answer given from this process, or the hash of a secret only the server can answer about. */
  private answerLocally(secret: string, requiredScopes: readonly string[]): VerifierResult | string {
    const classified = classifySecret(secret, this.formats);
    if (!classified) return MALFORMED;
    const { hash } = classified;
    const now = Date.now();
    const hit = this.cache.lookup(hash, now, this.trustReadsFrom(now));
    if (hit.state === 'absent') {
      this.stats.local++;
      return NOT_FOUND;
    }
    if (hit.state === 'found') {
      const local = decide(hit.key, requiredScopes, now);
      if (local) return this.answered(local, now);
    }
    return hash;
  }

  /** Stops the feed and the timers, reports the usage still pending, and closes the channel. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.feed.close();
      await this.usage.close();
      this.grpc.close();
    })();
    return this.closing;
  }

  /** A local answer; VALID ones are usage the server has not seen. */
  private answered(result: VerifierResult, now: number): VerifierResult {
    this.stats.local++;
    if (result.valid) this.usage.note(result.keyId, result.orgId, new Date(now));
    return result;
  }

  private async ask(secret: string, hash: string, scopes: readonly string[]): Promise<VerifierResult> {
    const shared = this.inFlight.get(hash);
    if (shared) {
      const answer = await shared;
      if (answer === null) return NOT_FOUND;
      const local = answer && decide(answer, scopes, Date.now());
      if (local) return this.answered(local, Date.now());
      // Only the server can answer these scopes (rate limit, or not known): a call of its own, not cached.
      return toVerifierResult(await this.call(secret, scopes));
    }
    const readAt = Date.now();
    const response = this.call(secret, scopes);
    const answer = response.then((res) => cachedAnswer(res, answerCurrentAt(res, readAt, this.boundMs)));
    answer.catch(() => undefined); // the caller sees the failure through `response`
    this.inFlight.set(hash, answer);
    try {
      const res = await response;
      const a = await answer;
      // Not kept if the feed named the key (or cleared everything) meanwhile: the answer may predate that change.
      if (this.inFlight.get(hash) === answer && a !== undefined && this.settled(hash, Date.now()) && !this.closing) {
        if (a) this.cache.store(hash, a);
        else this.cache.storeAbsent(hash, readAt);
      }
      return toVerifierResult(res);
    } finally {
      if (this.inFlight.get(hash) === answer) this.inFlight.delete(hash);
    }
  }

  private call(secret: string, scopes: readonly string[]): Promise<VerifyKeyResponse> {
    this.stats.remote++;
    return new Promise((resolve, reject) => {
      this.grpc.verifyKey(
        { key: secret, requiredScopes: [...scopes] },
        this.metadata.clone(),
        { deadline: Date.now() + this.callTimeoutMs },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  }

  private reportUsage(entries: KeyUsage[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.grpc.reportUsage({ entries }, this.metadata.clone(), { deadline: Date.now() + this.callTimeoutMs }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  private changed(hash: string, keyId: string, kind: KeyChangeKind): void {
    // A read in flight may predate the change (for a new key: a NOT_FOUND from before it existed).
    this.inFlight.delete(hash);
    if (kind === KeyChangeKind.KEY_CHANGE_KIND_CREATED) {
      // A new key is in storage before it is logged: only a cached "no such key" is out of date.
      this.cache.evictAbsent(hash);
    } else {
      this.cache.evict(hash);
      this.announce(hash);
    }
    this.o.onFeed?.({ type: 'change', keyId, kind: CHANGE_KINDS[kind] ?? 'changed' });
  }

  /** A change is logged just before it lands: answers about the key are not cached until it has settled. */
  private announce(hash: string): void {
    const now = Date.now();
    this.announced.delete(hash);
    this.announced.set(hash, now);
    for (const [h, at] of this.announced) {
      if (now - at < this.settleMs) break;
      this.announced.delete(h);
    }
  }

  private settled(hash: string, now: number): boolean {
    const at = this.announced.get(hash);
    return at === undefined || now - at >= this.settleMs;
  }

  /** While the feed vouches for the cache (a heartbeat within the bound), every entry; otherwise only those read within it. */
  private trustReadsFrom(now: number): number {
    return now - this.confirmedAt <= this.boundMs ? -Infinity : now - this.boundMs;
  }
}
