import type { StoredKey } from './model';

export type KeyStateName = 'ACTIVE' | 'EXPIRED' | 'ARCHIVED' | 'REVOKED';

/** EXPIRED is derived from expires_at at read time; it is never stored. */
export function keyState(doc: Pick<StoredKey, 'status' | 'expires_at'>, now: Date): KeyStateName {
  if (doc.status === 'revoked') return 'REVOKED';
  if (doc.status === 'archived') return 'ARCHIVED';
  if (doc.expires_at && doc.expires_at.getTime() <= now.getTime()) return 'EXPIRED';
  return 'ACTIVE';
}
