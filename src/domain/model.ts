/**
 * The records the domain keeps through its ports (ports.ts). Field names are snake_case so a
 * store can keep them as they are; what a store adds or leaves out is its own business.
 */

/** What a key's lifecycle stores; EXPIRED is derived from expires_at (keyState.ts), never stored. */
export type KeyStatus = 'active' | 'archived' | 'revoked';

export interface StoredKey {
  _id: string;
  org_id: string;
  workspace_id: string | null;
  name: string;
  scopes: string[];
  environment: 'live' | 'test';
  /** SHA-256 hex of the secret; unique. The secret itself is never stored in clear. */
  hash: string;
  start: string;
  masked_key: string;
  fingerprint: string;
  metadata: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  /** The latest verification noted by a usage flush; changes to the key never write it. */
  last_used_at: Date | null;
  expires_at: Date | null;
  created_by: string;
  status: KeyStatus;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoked_comment: string | null;
  archived_at: Date | null;
  allow_self_revoke: boolean;
  recoverable: boolean;
  etag: string;
  rotated_from: string | null;
  replaced_by: string | null;
  rate_limit: { limit: number; window_seconds: number } | null;
  /** Recoverable keys only: the secret sealed with AES-256-GCM (never the plaintext). */
  secret_box: SealedSecret | null;
  /** Imported keys only: the FOREIGN_KEY_FORMATS name their secret is in. Absent on keys issued here. */
  format?: string;
}

/** ListKeys filters: each one given narrows the listing (they combine with AND). */
export interface KeyFilters {
  workspaceId?: string;
  /** A user ("usr_…") or a key ("key_…"). */
  createdBy?: string;
  environment?: 'live' | 'test';
  /** Keys holding this scope. */
  scope?: string;
}

export interface SealedSecret {
  /** Which encryption key sealed it, so keys can be rotated. */
  kid: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

/** AIP-155: the key a CreateKey request_id stands for, per organization. */
export interface CreateRequestClaim {
  org_id: string;
  key_id: string;
  /** The principal that made the request: only it may replay the id. */
  caller: string;
  /** Digest of the request's parameters: a replay must carry the same ones. */
  fingerprint: string;
  created_at: Date;
  /** End of the idempotency window; the retention sweep removes the claim after it. */
  expires_at: Date;
  /** The key exists: replays answer with it. */
  completed: boolean;
  /**
   * Sealed copy of the secret so a retry can return it (only when encryption is configured);
   * removed with the claim at the window's end, and at once when the key is revoked or deleted.
   */
  secret_box: SealedSecret | null;
}

/** One audit event; `_id` is chosen before the first write, so a retried write is not doubled. */
export interface AuditEntry {
  _id: string;
  org_id: string;
  actor: string;
  /** Staff acting on another organization: the staff member's email. */
  acting_as: string | null;
  action: string;
  key_id: string | null;
  time: Date;
  request_id: string;
  outcome: string;
  method: string;
  /** What the action adds (e.g. a limit's old and new value); absent when nothing. */
  details?: Record<string, string>;
}

/**
 * One entry of the key change log: every change that can end, narrow or create a key, written
 * before the change itself lands. Other instances poll this log to evict what they cached;
 * deleted keys leave their tombstone here.
 */
export interface KeyChange {
  /** Unique per entry (a "chg_" id). */
  _id: string;
  key_id: string;
  org_id: string;
  /** SHA-256 of the secret: the Verify cache's key. */
  hash: string;
  /** The version the change produces ("" for a deletion). */
  etag: string;
  kind: 'created' | 'changed' | 'deleted';
  /** When the change was logged (the writer's clock). */
  at: Date;
}

/** What a poll of the change log needs of each entry (the id tells an entry read again from a new one). */
export type LoggedChange = Pick<KeyChange, '_id' | 'key_id' | 'hash' | 'etag' | 'kind' | 'at'>;

export interface LastUse {
  keyId: string;
  at: Date;
}

/**
 * The verification results that name a key (MALFORMED and NOT_FOUND name none), in the order of
 * the contract's VerifyCode: what usage is counted by.
 */
export const USAGE_CODES = ['VALID', 'EXPIRED', 'REVOKED', 'ARCHIVED', 'INSUFFICIENT_SCOPE', 'RATE_LIMITED'] as const;
export type UsageCode = (typeof USAGE_CODES)[number];

export interface DailyCount {
  keyId: string;
  orgId: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  code: UsageCode;
  count: number;
}

/** Verifications of one UTC day, by result code (codes never seen that day left out). */
export interface DailyUsage {
  day: string;
  counts: Array<{ code: UsageCode; count: number }>;
}

/** What one usage flush writes: the latest use per key, and verification counts per key and day. */
export interface UsageEntries {
  lastUsed: LastUse[];
  daily: DailyCount[];
}
