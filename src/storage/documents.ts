/** Shapes of the documents stored in MongoDB. Field names are snake_case, as stored. */

export type StoredStatus = 'active' | 'archived' | 'revoked';

export interface KeyDocument {
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
  /**
   * Not stored in api_keys: read from key_last_used. Usage writes never touch the key document,
   * so they cannot race a change to it (FerretDB rewrites whole documents, and a concurrent
   * $max there was measured to undo key changes, revocations included).
   */
  last_used_at: Date | null;
  expires_at: Date | null;
  created_by: string;
  status: StoredStatus;
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
}

export interface SealedSecret {
  /** Which encryption key sealed it, so keys can be rotated. */
  kid: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

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

/** AIP-155: the key a CreateKey request_id produced, per organization. */
export interface CreateRequestDocument {
  /** `${org_id}:${request_id}` */
  _id: string;
  org_id: string;
  key_id: string;
  /** The principal that made the request: only it may replay the id. */
  caller: string;
  /** Digest of the request's parameters: a replay must carry the same ones. */
  fingerprint: string;
  created_at: Date;
  /** End of the idempotency window; the retention sweep removes the document after it. */
  expires_at: Date;
  /** The key exists: replays answer with it. */
  completed: boolean;
  /**
   * Sealed copy of the secret so a retry can return it (only when encryption is configured);
   * removed with the document at the window's end, and at once when the key is revoked or deleted.
   */
  secret_box: SealedSecret | null;
}

export interface AuditEventDocument {
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
}

export interface OrganizationDocument {
  _id: string;
  /** Overrides ORG_KEY_LIMIT for this organization when set. */
  key_limit?: number;
  created_at: Date;
}

/** One occupied place under an organization's cap on live keys; see SlotRepository. */
export interface KeySlotDocument {
  /** `${org_id}:${slot}` — uniqueness of _id is what makes the cap hold. */
  _id: string;
  org_id: string;
  key_id: string;
  created_at: Date;
}

/** Verifications per key per UTC day, written in batches by the usage flush. */
export interface KeyUsageDocument {
  /** `${key_id}|${day}` */
  _id: string;
  key_id: string;
  day: string;
  count: number;
}

/** The latest verification of a key, written in batches by the usage flush ($max). */
export interface KeyLastUsedDocument {
  /** The key id. */
  _id: string;
  last_used_at: Date;
}

/**
 * One entry of the key change log: every change that can end, narrow or create a key, written
 * before the change itself lands. Other instances poll this small, pruned log (never api_keys)
 * to evict what they cached; deleted keys leave their tombstone here.
 */
export interface KeyChangeDocument {
  /** Unique per entry (an "chg_" id). */
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
