import type { StoredKey } from '../../../src/domain/model';

/** A complete, active key document for unit tests; override what the test is about. */
export function fakeKey(over: Partial<StoredKey> = {}): StoredKey {
  const at = new Date('2025-01-01T00:00:00.000Z');
  return {
    _id: 'key_01jabcdefghjkmnpqrstvwxyz0',
    org_id: 'org_01jabcdefghjkmnpqrstvwxyz0',
    workspace_id: null,
    name: 'test key',
    scopes: ['read'],
    environment: 'live',
    hash: 'a'.repeat(64),
    start: 'sk_live_abcd',
    masked_key: 'sk_live_abcd…wxyz',
    fingerprint: 'aaaaaa',
    metadata: {},
    created_at: at,
    updated_at: at,
    last_used_at: null,
    expires_at: null,
    created_by: 'usr_01jabcdefghjkmnpqrstvwxyz0',
    status: 'active',
    revoked_at: null,
    revoked_by: null,
    revoked_comment: null,
    archived_at: null,
    allow_self_revoke: false,
    recoverable: false,
    etag: 'e1',
    rotated_from: null,
    replaced_by: null,
    rate_limit: null,
    secret_box: null,
    ...over,
  };
}
