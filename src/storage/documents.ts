/** Shapes of the documents stored in MongoDB. Field names are snake_case, as stored. */
import type { AuditEntry, CreateRequestClaim, KeyChange, StoredKey, UsageCode } from '../domain/model';

/**
 * api_keys: the domain's key without last_used_at, which lives in key_last_used. Usage writes
 * never touch the key document, so they cannot race a change to it (FerretDB rewrites whole
 * documents, and a concurrent $max there was measured to undo key changes, revocations included).
 */
export type KeyDocument = Omit<StoredKey, 'last_used_at'>;

/**
 * One claimed version of a key: `${key_id}:${etag}`. Whoever inserts it may change the key;
 * a concurrent change of the same version gets E11000. This serializes changes to a key on
 * servers whose conditional updates are not atomic (FerretDB on SQLite).
 */
export interface KeyMutationDocument {
  _id: string;
  key_id: string;
  at: Date;
}

/** create_requests: one claim per organization and request id. */
export interface CreateRequestDocument extends CreateRequestClaim {
  /** `${org_id}:${request_id}` */
  _id: string;
}

/** audit_events: stored as the domain writes them. */
export type AuditEventDocument = AuditEntry;

export interface OrganizationDocument {
  _id: string;
  /** Overrides ORG_KEY_LIMIT for this organization when set. */
  key_limit?: number;
  created_at: Date;
}

/** One occupied place under an organization's cap on live keys; see SlotRepository. */
export interface KeySlotDocument {
  /** `${org_id}:${n}` — uniqueness of _id is what makes the cap hold. */
  _id: string;
  org_id: string;
  key_id: string;
  /** The place, 0 ≤ n < the cap it was taken under; indexed for the walk to a free one. */
  n: number;
  created_at: Date;
}

/** A cap an organization's places were taken under: a lower cap later still counts them. */
export interface KeySlotCapDocument {
  /** `${org_id}:${cap}` */
  _id: string;
  org_id: string;
  cap: number;
  created_at: Date;
}

/**
 * Verifications of one key on one UTC day with one result, counted by one service instance and
 * written in batches by its usage flush (UsageRepository). Documents written before usage was
 * counted by result have the _id `${key_id}|${day}`, no code (they counted VALID uses only) and
 * no org_id until UsageRepository.attributeOldCounts gives them one.
 */
export interface KeyUsageDocument {
  /** `${key_id}|${day}|${instance}|${code}` */
  _id: string;
  /**
   * Missing on old counts until attributed (a query matches a missing field as null, hence the
   * type); "" when their key was deleted before that.
   */
  org_id?: string | null;
  key_id: string;
  day: string;
  code?: UsageCode;
  count: number;
}

/** The latest verification of a key, written in batches by the usage flush ($max). */
export interface KeyLastUsedDocument {
  /** The key id. */
  _id: string;
  last_used_at: Date;
}

/** key_changes: stored as the domain logs them; polled by `at`, pruned by the retention sweep. */
export type KeyChangeDocument = KeyChange;

/**
 * rate_counters: one instance's count in one window of one key's rate limit. Written only by that
 * instance ($set of its own figures), never shared: FerretDB rewrites whole documents, so
 * concurrent $inc on one document lose updates (docs/decisions/rate-limit-counters.md).
 */
export interface RateCounterDocument {
  /** `${key_id}|${window ms}|${window_start ms}|${instance}` */
  _id: string;
  key_id: string;
  window_start: Date;
  window_end: Date;
  instance: string;
  /** VALID answers the instance gave in the window. */
  count: number;
  /** count plus what the instance reserved ahead. */
  claim: number;
}
