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
