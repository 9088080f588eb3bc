/**
 * What the domain needs from the world, declared by the domain. src/storage implements the
 * stores, src/auth the user-token keys; src/app.ts is the one place that hands them in.
 */
import type { JWTVerifyGetKey } from 'jose';
import type { VerifiedKeyFields } from './keyCache';
import type {
  AuditEntry,
  CreateRequestClaim,
  DailyUsage,
  KeyChange,
  KeyFilters,
  KeyStatus,
  LoggedChange,
  SealedSecret,
  StoredKey,
  UsageEntries,
} from './model';

/** The service's clock; injected so every use case and test reads the same time. */
export type Clock = () => Date;

// ---- keys ----

export interface KeyListQuery {
  orgId: string;
  statuses: KeyStatus[];
  /** Only keys matching every filter given. */
  filters: KeyFilters;
  /** Exclusive position to continue after (newest first). */
  after?: { createdAt: Date; id: string };
  limit: number;
}

/** Fields a change may set; a key's identity, org, hash and usage are never changed by one. */
export type KeyUpdate = Partial<Omit<StoredKey, '_id' | 'org_id' | 'hash' | 'last_used_at'>>;

/** The keys, every read scoped by organization; changes serialized per version. */
export interface KeyStore {
  /** Fails when the hash or id is already stored. */
  insert(key: StoredKey): Promise<void>;
  findInOrg(orgId: string, id: string): Promise<StoredKey | null>;
  /** Newest first (created_at, then id, descending). */
  list(q: KeyListQuery): Promise<StoredKey[]>;
  /**
   * Claims the right to change the key at version `etag`: true for exactly one caller per
   * version. A claim whose change never landed is taken over once it has gone stale.
   */
  claimVersion(keyId: string, etag: string, now: Date): Promise<boolean>;
  /** Writes a claimed change; null (and nothing written) when the key is gone or no longer at `fromEtag`. */
  applyChange(orgId: string, id: string, fromEtag: string, set: KeyUpdate): Promise<StoredKey | null>;
  /** The key and everything stored about it. */
  remove(orgId: string, id: string): Promise<void>;
}

/** ImportKeys: a secret from elsewhere may already be a stored key's, in any organization. */
export interface ImportedKeyStore {
  /** Stores the key unless its hash is already stored (any organization): false then, and nothing written. */
  insertIfNewHash(key: StoredKey): Promise<boolean>;
}

/** Which ids are stored keys, in any organization, and whose (reported usage is recorded for those only). */
export interface KeyDirectory {
  /** The organization of each id that is a stored key; ids that are not are left out. */
  organizationsOf(ids: readonly string[]): Promise<Map<string, string>>;
}

export type { VerifiedKeyFields };

/** Verify's one storage read: the key with this secret hash, or null. */
export type KeyLookup = (hash: string) => Promise<VerifiedKeyFields | null>;

/** The cap on live keys per organization: each live key holds one slot. */
export interface SlotStore {
  /** Takes a free slot for `keyId` and returns its id; null when all `cap` slots are held by live keys. */
  acquire(orgId: string, keyId: string, cap: number, now: Date): Promise<string | null>;
  /** Frees every slot the key holds (it stopped being live). */
  release(orgId: string, keyId: string): Promise<void>;
  /** Frees one slot (an acquisition whose change did not happen). */
  releaseSlot(slotId: string): Promise<void>;
  /** Rotation: the successor takes its predecessor's slot, so the live count is unchanged. */
  transfer(orgId: string, fromKeyId: string, toKeyId: string): Promise<void>;
}

export interface OrganizationSettings {
  /** The organization's cap on live keys: its own limit when it has one, else `fallback`. */
  keyLimit(orgId: string, fallback: number): Promise<number>;
}

/** AIP-155 request ids: the first CreateKey with an id claims it; retries find the claim. */
export interface CreateRequestStore {
  /** True when this call now owns the request id (in claim.org_id); false when another call already does. */
  claim(requestId: string, claim: CreateRequestClaim): Promise<boolean>;
  find(orgId: string, requestId: string): Promise<CreateRequestClaim | null>;
  /** The key exists; `box` is the sealed secret replays may return (null: they return none). */
  complete(orgId: string, requestId: string, box: SealedSecret | null): Promise<void>;
  /** The key ended: no replay may hand its secret out again. */
  forgetSecret(orgId: string, keyId: string): Promise<void>;
  /** Gives the id back if it is still claimed for `keyId`. */
  release(orgId: string, requestId: string, keyId: string): Promise<void>;
}

/** The key change log other instances poll. */
export interface ChangeLog {
  record(entry: KeyChange): Promise<void>;
  /** Entries logged at or after `since`. */
  since(since: Date): Promise<LoggedChange[]>;
}

// ---- audit ----

export interface AuditQuery {
  orgId: string;
  action?: string;
  keyId?: string;
  startTime?: Date;
  endTime?: Date;
  /** Exclusive position to continue after (newest first). */
  after?: { time: Date; id: string };
  limit: number;
}

export interface AuditStore {
  /** Stores the event; one whose _id is already stored counts as stored (a retry of a write that landed). */
  insert(event: AuditEntry): Promise<void>;
  /** Newest first (time, then id, descending). */
  list(q: AuditQuery): Promise<AuditEntry[]>;
}

// ---- rate limits ----

/** One fixed window of a key's rate limit: [start, start + windowMs), aligned to multiples of windowMs. */
export interface RateWindow {
  keyId: string;
  start: number;
  windowMs: number;
}

/** What one instance writes about one window, into a document no other instance writes. */
export interface OwnRateCount extends RateWindow {
  /** VALID answers this instance gave in the window. */
  count: number;
  /** count plus what this instance reserved ahead of time: other instances leave it to this one. */
  claim: number;
}

/** The other instances' documents of one window, summed. */
export interface OthersRateCounts {
  count: number;
  claim: number;
  /** Instances with a document for the window. */
  instances: number;
}

/** Per-instance rate-limit counters: each instance writes only its own document per key and window. */
export interface RateCounterStore {
  /**
   * Writes `own`, then — only once every write is acknowledged — reads the other instances'
   * documents of `windows`, answering their sums in the order of `windows`. The order is what
   * rate limiting relies on: any two exchanges that overlap, at least one sees the other's write.
   */
  exchange(own: readonly OwnRateCount[], windows: readonly RateWindow[]): Promise<OthersRateCounts[]>;
}

// ---- usage and retention ----

/** A write that stopped part way hands back what it did not write, from the failed command on. */
export type UsageWriteOutcome = { ok: true } | { ok: false; unwritten: UsageEntries; error: unknown };

export interface UsageSink {
  /** Keeps last use monotonic and adds counts, whatever order instances write in. */
  write(entries: UsageEntries): Promise<UsageWriteOutcome>;
}

/** The days of a usage query, UTC, both included (YYYY-MM-DD). */
export interface DayRange {
  first: string;
  last: string;
}

export interface UsageStore {
  /** Verifications of one key (`keyId`) or of every key of `orgId` (null), per day with any, oldest first. */
  dailyUsage(orgId: string, keyId: string | null, days: DayRange): Promise<DailyUsage[]>;
  /**
   * Counts written before usage named its organization: gives at most `budget` of those dated
   * before `day` the organization of their key, and returns how many it looked at.
   */
  attributeOldCounts(beforeDay: string, budget: number): Promise<number>;
}

/** Called after each delete with the number of records it removed. */
export type OnDeleted = (count: number) => void;

/** Each method removes at most `budget` records, reports each delete, and returns how many went. */
export interface RetentionStore {
  /** Daily usage counts of days before `day` (YYYY-MM-DD, UTC). */
  usageDaysBefore(day: string, budget: number, onDeleted: OnDeleted): Promise<number>;
  auditEventsBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number>;
  /** Requests past the end stamped on them, or created before `createdBefore` (a window since shortened). */
  createRequestsExpired(now: Date, createdBefore: Date, budget: number, onDeleted: OnDeleted): Promise<number>;
  keyChangesBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number>;
  /** Version claims that can no longer decide a change; any claim older than `finishedBefore` is over. */
  finishedClaims(now: Date, finishedBefore: Date, budget: number, onDeleted: OnDeleted): Promise<number>;
  /** Rate-limit counters of windows that ended before `time`. */
  rateCountersEndedBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number>;
}

// ---- authentication ----

/**
 * How user tokens' signatures are checked: a shared HS256 secret, or a key set (JWKS) that
 * resolves each token's key. Reading a JWKS file or fetching one is infrastructure (src/auth).
 */
export type UserTokenKeys = { kind: 'secret'; secret: Uint8Array } | { kind: 'keySet'; keyFor: JWTVerifyGetKey };

// ---- organizations and leaked keys ----

/** An organization's own cap on live keys, read and set (GetOrganization, SetOrganizationKeyLimit). */
export interface OrganizationLimits {
  /** Its own limit; null when the deployment default applies. */
  ownKeyLimit(orgId: string): Promise<number | null>;
  /** Sets its own limit and returns the one it had (null: none). */
  setKeyLimit(orgId: string, limit: number, now: Date): Promise<number | null>;
}

/** How many places under the cap an organization's live keys hold. */
export interface SlotCount {
  held(orgId: string): Promise<number>;
}

/** Keys by the SHA-256 of their secrets, in any organization (LookupKey, ReportLeakedKeys). */
export interface KeysBySecret {
  findByHashes(hashes: readonly string[]): Promise<StoredKey[]>;
}
