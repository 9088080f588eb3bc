import type { StoredKey } from './model';

export type KeyStateName = 'ACTIVE' | 'EXPIRED' | 'ARCHIVED' | 'REVOKED';

/** EXPIRED is derived from the expiry at read time; it is never stored. Expiry is exclusive. */
export function keyState(status: StoredKey['status'], expiresAtMs: number | null, nowMs: number): KeyStateName {
  if (status === 'revoked') return 'REVOKED';
  if (status === 'archived') return 'ARCHIVED';
  if (expiresAtMs !== null && expiresAtMs <= nowMs) return 'EXPIRED';
  return 'ACTIVE';
}

/** The state of a whole stored key. */
export function documentState(doc: Pick<StoredKey, 'status' | 'expires_at'>, now: Date): KeyStateName {
  return keyState(doc.status, doc.expires_at ? doc.expires_at.getTime() : null, now.getTime());
}
