import { KeyState, type Key } from '../gen/apikeys/v1/key';
import { documentState, type KeyStateName } from '../domain/keyState';
import type { StoredKey } from '../domain/model';

const STATE: Record<KeyStateName, KeyState> = {
  ACTIVE: KeyState.KEY_STATE_ACTIVE,
  EXPIRED: KeyState.KEY_STATE_EXPIRED,
  ARCHIVED: KeyState.KEY_STATE_ARCHIVED,
  REVOKED: KeyState.KEY_STATE_REVOKED,
};

const opt = <T>(v: T | null): T | undefined => v ?? undefined;

/** Stored document → the public Key message. The hash never leaves the service. */
export function toProtoKey(doc: StoredKey, now: Date): Key {
  return {
    id: doc._id,
    orgId: doc.org_id,
    workspaceId: doc.workspace_id ?? '',
    name: doc.name,
    scopes: doc.scopes,
    environment: doc.environment,
    state: STATE[documentState(doc, now)],
    start: doc.start,
    maskedKey: doc.masked_key,
    fingerprint: doc.fingerprint,
    metadata: doc.metadata,
    createTime: doc.created_at,
    updateTime: doc.updated_at,
    lastUsedTime: opt(doc.last_used_at),
    expireTime: opt(doc.expires_at),
    createdBy: doc.created_by,
    revokeTime: opt(doc.revoked_at),
    revokedBy: doc.revoked_by ?? '',
    revokedComment: doc.revoked_comment ?? '',
    archiveTime: opt(doc.archived_at),
    allowSelfRevoke: doc.allow_self_revoke,
    recoverable: doc.recoverable,
    etag: doc.etag,
    rotatedFrom: doc.rotated_from ?? '',
    replacedBy: doc.replaced_by ?? '',
    rateLimit: doc.rate_limit ? { limit: doc.rate_limit.limit, windowSeconds: doc.rate_limit.window_seconds } : undefined,
  };
}
