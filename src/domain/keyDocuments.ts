/**
 * What every way of adding a key writes (KeyManager's create and rotate, KeyImporter's import):
 * the key's document, its change-log entry, the refusal when the organization is full, and how
 * work after a completed change reports its failure.
 */
import { randomBytes } from 'node:crypto';
import { actorId } from './authorization';
import { DomainError } from './errors';
import { newId } from './ids';
import type { SecretDescription } from './keyFormat';
import type { CallContext } from './principal';
import type { KeyChange, SealedSecret, StoredKey } from './model';
import type { ValidCreateKey } from './validation';

/** A key's version (AIP-154 etag): new on every change. */
export const newEtag = () => randomBytes(9).toString('base64url');

/** The organization holds `cap` live keys already. */
export const planLimitReached = (cap: number) =>
  new DomainError(
    'PLAN_LIMIT_REACHED',
    `organization has reached its cap of ${cap} live keys; revoke or archive an unused key, or raise the plan's limit`,
    [],
    { limit: String(cap) },
  );

/** A new active key of ctx's organization: its settings, what is shown of its secret, who made it. */
export function keyDocument(
  ctx: CallContext,
  v: ValidCreateKey,
  shown: SecretDescription,
  id: string,
  now: Date,
  sealed: SealedSecret | null,
): StoredKey {
  return {
    _id: id,
    org_id: ctx.orgId,
    workspace_id: v.workspaceId,
    name: v.name,
    scopes: v.scopes,
    environment: v.environment,
    hash: shown.hash,
    start: shown.start,
    masked_key: shown.maskedKey,
    fingerprint: shown.fingerprint,
    metadata: v.metadata,
    created_at: now,
    updated_at: now,
    last_used_at: null,
    expires_at: v.expiresAt,
    created_by: actorId(ctx),
    status: 'active',
    revoked_at: null,
    revoked_by: null,
    revoked_comment: null,
    archived_at: null,
    allow_self_revoke: v.allowSelfRevoke,
    recoverable: v.recoverable,
    etag: newEtag(),
    rotated_from: null,
    replaced_by: null,
    rate_limit: v.rateLimit,
    secret_box: sealed,
  };
}

/** The change-log entry for a change to `doc` that produces version `etag` ("" for a deletion). */
export function changeEntry(doc: StoredKey, kind: KeyChange['kind'], etag: string, at: Date): KeyChange {
  return { _id: newId('chg'), key_id: doc._id, org_id: doc.org_id, hash: doc.hash, etag, kind, at };
}

/** Work after a change that already happened: its failure is reported, never answered as the change's. */
export async function followUp(what: string, fn: () => Promise<void>, onFailed: (what: string, err: unknown) => void): Promise<void> {
  try {
    await fn();
  } catch (err) {
    onFailed(what, err);
  }
}
