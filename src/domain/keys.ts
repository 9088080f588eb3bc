import { createHash } from 'node:crypto';
import type { AuditLog } from './audit';
import { actorId, assertDominates, authorize, escalation, isSelfRevoke, type KeyBounds } from './authorization';
import { DomainError, keyNotFound, type Reason } from './errors';
import { newId } from './ids';
import { describeSecret, generateSecret } from './keyFormat';
import { changeEntry, followUp, keyDocument, newEtag, planLimitReached } from './keyDocuments';
import { documentState, type KeyStateName } from './keyState';
import { KeyListing, type KeyPage, type ListKeysInput } from './keyListing';
import type { CallContext } from './principal';
import type { SecretBox } from './secretBox';
import type { KeyChange, StoredKey } from './model';
import type { ChangeLog, Clock, CreateRequestStore, KeyStore, KeyUpdate, OrganizationSettings, SlotStore } from './ports';
import {
  validateComment,
  validateCreateKey,
  validateKeyId,
  validateOverlap,
  validateUpdateKey,
  type CreateKeyInput,
  type UpdateKeyInput,
  type ValidCreateKey,
} from './validation';

export interface KeyManagerDeps {
  keys: KeyStore;
  slots: SlotStore;
  organizations: OrganizationSettings;
  createRequests: CreateRequestStore;
  audit: AuditLog;
  /** Unset: recoverable keys are refused. */
  secretBox?: SecretBox;
  now: Clock;
  keyPrefix: string;
  orgKeyLimit: number;
  pageTokenKey: Buffer;
  rotation: { maxOverlapSeconds: number; defaultOverlapSeconds: number };
  idempotencyWindowSeconds: number;
  /** Other instances learn of every change from this log; each entry is written before its change lands. */
  changeLog: Pick<ChangeLog, 'record'>;
  /**
   * Called after any change to a key, with the change-log entry written for it, so this
   * instance's Verify cache (and its WatchKeyChanges subscribers) drop it before the RPC answers.
   */
  onKeyChanged: (key: StoredKey, change: KeyChange) => void;
  /**
   * A follow-up of a change that already happened failed (a slot release, a sealed copy's
   * removal): the client still gets success, and operators hear of it here.
   */
  onFollowUpFailed: (what: string, err: unknown) => void;
}

const MAX_CHANGE_ATTEMPTS = 5;
const IDEMPOTENT_WAIT_MS = 5_000;

/** The dimensions of a stored key that the dominance rule compares. */
export function boundsOf(doc: Pick<StoredKey, 'scopes' | 'environment' | 'expires_at' | 'rate_limit' | 'workspace_id'>): KeyBounds {
  return {
    scopes: doc.scopes,
    environment: doc.environment,
    expiresAt: doc.expires_at,
    rateLimit: doc.rate_limit && { limit: doc.rate_limit.limit, windowSeconds: doc.rate_limit.window_seconds },
    workspaceId: doc.workspace_id,
  };
}

/** What a request_id stands for: a replay must carry the very same parameters. */
function requestFingerprint(v: ValidCreateKey): string {
  const canonical = JSON.stringify([
    v.name,
    [...v.scopes].sort(),
    v.environment,
    v.expiresAt?.getTime() ?? null,
    Object.entries(v.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    v.workspaceId,
    v.allowSelfRevoke,
    v.recoverable,
    v.rateLimit && [v.rateLimit.limit, v.rateLimit.window_seconds],
  ]);
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Reasons for a change refused because of the key's state. */
const STATE_REASON: Record<KeyStateName, Reason> = {
  ACTIVE: 'KEY_NOT_ARCHIVED',
  EXPIRED: 'KEY_NOT_ACTIVE',
  ARCHIVED: 'KEY_ARCHIVED',
  REVOKED: 'KEY_REVOKED',
};

interface Claim {
  /** States the key may be in; anything else is FAILED_PRECONDITION. */
  from: KeyStateName[];
  /** AIP-154: when given, the key must still be at this etag (else ABORTED). */
  etag?: string;
  /** Extra checks on the current document (throw to refuse). */
  check?: (doc: StoredKey) => void;
}

interface Change extends Claim {
  set: (doc: StoredKey, now: Date) => KeyUpdate;
}

/**
 * The key lifecycle use cases. Every method is scoped to ctx.orgId and authorized first; every
 * change passes the dominance rule (authorization.ts) for the key as it is and as it would
 * become, so no caller ever makes, changes or revives a key that holds more than itself.
 */
export class KeyManager {
  private readonly listing: KeyListing;

  constructor(private readonly d: KeyManagerDeps) {
    this.listing = new KeyListing(d);
  }

  create(ctx: CallContext, input: CreateKeyInput): Promise<{ key: StoredKey; secret: string }> {
    return this.d.audit.around(
      ctx,
      'key.create',
      (r) => r.key._id,
      true,
      async () => {
        authorize(ctx, 'write');
        const now = this.d.now();
        const p = ctx.principal;
        // A key's environment is part of what it holds: a key minting another one stays in its own by default.
        const environment = input.environment === '' && p.kind === 'apiKey' ? p.environment : input.environment;
        const v = validateCreateKey({ ...input, environment }, now);
        assertDominates(ctx, createBounds(v));
        if (v.recoverable && !this.d.secretBox) {
          throw new DomainError('RECOVERY_DISABLED', 'recoverable keys need SECRET_ENCRYPTION_KEY to be configured on the service');
        }
        return v.requestId ? this.createOnce(ctx, v, v.requestId) : this.insertNewKey(ctx, v, newId('key'));
      },
    );
  }

  async get(ctx: CallContext, id: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.get', id, false, async () => {
      authorize(ctx, 'read');
      return this.find(ctx, id);
    });
  }

  list(ctx: CallContext, input: ListKeysInput): Promise<KeyPage> {
    return this.listing.list(ctx, input);
  }

  update(ctx: CallContext, id: string, input: UpdateKeyInput, mask: string[], etag: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.update', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id, 'key.id');
      const fields = validateUpdateKey(input, mask, this.d.now());
      return this.change(ctx, id, {
        from: ['ACTIVE', 'EXPIRED', 'ARCHIVED'],
        etag: etag || undefined,
        check: (doc) => {
          const after = { ...doc, ...fields };
          assertDominates(ctx, boundsOf(doc), boundsOf(after));
          this.checkRetiringUpdate(doc, after);
        },
        set: () => fields,
      });
    });
  }

  revoke(ctx: CallContext, id: string, comment: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.revoke', id, true, async () => {
      const self = isSelfRevoke(ctx.principal, id);
      if (!self) authorize(ctx, 'write');
      validateKeyId(id);
      const reason = validateComment(comment);
      return this.end(ctx, id, actorId(ctx), reason || null, (current) => {
        if (!self) assertDominates(ctx, boundsOf(current));
      });
    });
  }

  /**
   * Revokes a key whose secret was reported leaked: the same path as RevokeKey (audited, change
   * log, caches), with `revokedBy` naming the report. `ctx` acts in the key's organization; the
   * caller was authorized for the report (authorizeBackoffice), not for this key's organization.
   */
  revokeLeaked(ctx: CallContext, id: string, revokedBy: string, comment: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.revoke', id, true, () => this.end(ctx, id, revokedBy, comment));
  }

  /** A reversible soft delete; the key fails verification at once and frees its slot. */
  archive(ctx: CallContext, id: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.archive', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const doc = await this.change(ctx, id, {
        from: ['ACTIVE', 'EXPIRED'],
        check: (current) => assertDominates(ctx, boundsOf(current)),
        set: (_d, now) => ({ status: 'archived', archived_at: now }),
      });
      await this.followUp('slot release', () => this.d.slots.release(ctx.orgId, id));
      return doc;
    });
  }

  /** Back to ACTIVE (or EXPIRED, if its time has passed); counts against the cap again. */
  reactivate(ctx: CallContext, id: string): Promise<StoredKey> {
    return this.d.audit.around(ctx, 'key.reactivate', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const check = (doc: StoredKey) => {
        assertDominates(ctx, boundsOf(doc));
        // Its place went to its successor: a rotated-away key only ever retires.
        if (doc.replaced_by) throw retiring(doc, 'a key rotated away cannot be reactivated');
      };
      const current = await this.find(ctx, id);
      this.requireState(current, ['ARCHIVED']);
      check(current);
      const slot = await this.takeSlot(ctx.orgId, id, this.d.now());
      try {
        return await this.change(ctx, id, { from: ['ARCHIVED'], check, set: () => ({ status: 'active', archived_at: null }) });
      } catch (err) {
        await this.d.slots.releaseSlot(slot);
        throw err;
      }
    });
  }

  /** Permanent. The audit trail keeps the fact; the slot is freed; other instances see a tombstone. */
  delete(ctx: CallContext, id: string): Promise<void> {
    return this.d.audit.around(ctx, 'key.delete', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const { doc, now } = await this.claim(ctx, id, {
        from: ['ACTIVE', 'EXPIRED', 'ARCHIVED', 'REVOKED'],
        check: (current) => assertDominates(ctx, boundsOf(current)),
      });
      const change = await this.logChange(doc, 'deleted', '', now);
      await this.d.keys.remove(ctx.orgId, id);
      this.d.onKeyChanged(doc, change);
      await this.afterEnd(ctx.orgId, id);
    });
  }

  /**
   * Issues a successor with the same name, scopes, metadata and environment; the old key keeps
   * working until now + overlap (0 revokes it at once) and is retiring from then on: its expiry
   * can be brought forward, never extended. The successor inherits the old key's slot, so
   * rotation never trips the plan limit.
   */
  rotate(ctx: CallContext, id: string, overlap: { seconds: number; nanos: number } | undefined) {
    return this.d.audit.around(ctx, 'key.rotate', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const overlapMs = validateOverlap(overlap, this.d.rotation);
      const old = await this.find(ctx, id);
      const check = (doc: StoredKey) => {
        this.checkRotatable(doc);
        assertDominates(ctx, boundsOf(doc));
      };
      check(old);
      const secret = generateSecret(this.d.keyPrefix, old.environment);
      const now = this.d.now();
      const successor: StoredKey = {
        ...this.newDocument(ctx, this.successorSpec(old), secret, newId('key'), now),
        rotated_from: old._id,
      };
      await this.d.keys.insert(successor);
      let previous: StoredKey;
      try {
        previous = await this.change(ctx, id, {
          from: ['ACTIVE'],
          etag: old.etag,
          check,
          set: (doc, at) => this.retireFields(ctx, doc, successor._id, overlapMs, at),
        });
      } catch (err) {
        await this.d.keys.remove(ctx.orgId, successor._id);
        throw err;
      }
      await this.logChange(successor, 'created', successor.etag, now);
      await this.followUp('slot transfer', () => this.d.slots.transfer(ctx.orgId, id, successor._id));
      // No overlap revoked the old key at once: its sealed copy goes as with any revocation.
      if (overlapMs === 0) await this.followUp('sealed secret removal', () => this.d.createRequests.forgetSecret(ctx.orgId, id));
      return { key: successor, secret, previous };
    });
  }

  /** Recoverable keys only: admin or `write` over a key the caller dominates; every read audited. */
  getSecret(ctx: CallContext, id: string): Promise<string> {
    return this.d.audit.around(ctx, 'key.secret.read', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const doc = await this.find(ctx, id);
      assertDominates(ctx, boundsOf(doc));
      if (!doc.recoverable || !doc.secret_box) {
        throw new DomainError('KEY_NOT_RECOVERABLE', `key ${id} was not created recoverable; its secret cannot be read back`);
      }
      if (!this.d.secretBox) throw new DomainError('RECOVERY_DISABLED', 'SECRET_ENCRYPTION_KEY is not configured on the service');
      return this.d.secretBox.open(doc.secret_box);
    });
  }

  // ---- creation ----

  private async insertNewKey(ctx: CallContext, v: ValidCreateKey, id: string): Promise<{ key: StoredKey; secret: string }> {
    const now = this.d.now();
    const secret = generateSecret(this.d.keyPrefix, v.environment);
    const doc = this.newDocument(ctx, v, secret, id, now);
    const slot = await this.takeSlot(ctx.orgId, doc._id, now);
    try {
      await this.d.keys.insert(doc);
    } catch (err) {
      await this.d.slots.releaseSlot(slot);
      throw err;
    }
    // Instances that cached this hash as unknown drop that answer.
    await this.followUp('change log', async () => {
      await this.logChange(doc, 'created', doc.etag, now);
    });
    return { key: doc, secret };
  }

  /**
   * AIP-155: the first call with a request id creates the key; retries by the same caller with
   * the same parameters (within the idempotency window) get the same key, and its secret when it
   * could be kept sealed. Anyone else replaying the id is refused: a request id is not a handle.
   */
  private async createOnce(ctx: CallContext, v: ValidCreateKey, requestId: string): Promise<{ key: StoredKey; secret: string }> {
    // Waiting for the first call ends at the caller's own deadline if that comes sooner.
    const deadline = Math.min(Date.now() + IDEMPOTENT_WAIT_MS, ctx.deadline ?? Infinity);
    const caller = ctx.principal.id;
    const fingerprint = requestFingerprint(v);
    while (Date.now() < deadline) {
      const keyId = newId('key');
      const now = this.d.now();
      const expiresAt = new Date(now.getTime() + this.d.idempotencyWindowSeconds * 1000);
      const newClaim = {
        org_id: ctx.orgId,
        key_id: keyId,
        caller,
        fingerprint,
        created_at: now,
        expires_at: expiresAt,
        completed: false,
        secret_box: null,
      };
      if (await this.d.createRequests.claim(requestId, newClaim)) {
        try {
          const created = await this.insertNewKey(ctx, v, keyId);
          const sealed = this.d.secretBox ? this.d.secretBox.seal(created.secret) : null;
          await this.followUp('request completion', () => this.d.createRequests.complete(ctx.orgId, requestId, sealed));
          return created;
        } catch (err) {
          await this.d.createRequests.release(ctx.orgId, requestId, keyId);
          throw err;
        }
      }
      const claim = await this.d.createRequests.find(ctx.orgId, requestId);
      if (!claim) continue; // the first attempt failed and gave the id back: try to claim it
      if (claim.expires_at.getTime() <= this.d.now().getTime()) {
        await this.d.createRequests.release(ctx.orgId, requestId, claim.key_id);
        continue;
      }
      if (claim.caller !== caller || claim.fingerprint !== fingerprint) {
        throw new DomainError(
          'REQUEST_ID_REUSED',
          'this request_id was already used for another CreateKey (by another caller or with other parameters); use a new one',
          [{ field: 'request_id', reason: 'REQUEST_ID_REUSED', description: 'already used for a different request' }],
        );
      }
      if (claim.completed) {
        const key = await this.d.keys.findInOrg(ctx.orgId, claim.key_id);
        if (!key) throw keyNotFound(claim.key_id);
        // The key may have been widened since: a replay reveals it only to a caller that still dominates it.
        assertDominates(ctx, boundsOf(key));
        return { key, secret: claim.secret_box && this.d.secretBox ? this.d.secretBox.open(claim.secret_box) : '' };
      }
      ctx.signal?.throwIfAborted(); // the caller has gone: stop polling for it
      await new Promise((r) => setTimeout(r, 25)); // the first call is still creating it
    }
    throw new DomainError('STORAGE_UNAVAILABLE', 'a create with this request_id is still in progress; retry shortly');
  }

  private newDocument(ctx: CallContext, v: ValidCreateKey, secret: string, id: string, now: Date): StoredKey {
    const sealed = v.recoverable && this.d.secretBox ? this.d.secretBox.seal(secret) : null;
    return keyDocument(ctx, v, describeSecret(secret), id, now, sealed);
  }

  // ---- rotation ----

  private successorSpec(old: StoredKey): ValidCreateKey {
    return {
      name: old.name,
      scopes: old.scopes,
      environment: old.environment,
      expiresAt: old.expires_at,
      metadata: old.metadata,
      workspaceId: old.workspace_id,
      allowSelfRevoke: old.allow_self_revoke,
      recoverable: old.recoverable,
      requestId: null,
      rateLimit: old.rate_limit,
    };
  }

  private checkRotatable(doc: StoredKey): void {
    if (doc.replaced_by) {
      throw new DomainError('KEY_ROTATED', `key ${doc._id} was already rotated; rotate its successor ${doc.replaced_by}`, [], {
        replaced_by: doc.replaced_by,
      });
    }
    this.requireState(doc, ['ACTIVE']);
  }

  /** A retiring key may be narrowed or renamed, never widened: it must stay dominated by itself. */
  private checkRetiringUpdate(doc: StoredKey, after: StoredKey): void {
    if (!doc.replaced_by) return;
    const e = escalation(boundsOf(doc), boundsOf(after));
    if (e) throw retiring(doc, `a key rotated away can only be narrowed: ${e.message}`);
  }

  private retireFields(ctx: CallContext, doc: StoredKey, successorId: string, overlapMs: number, now: Date): KeyUpdate {
    if (overlapMs === 0) {
      return { replaced_by: successorId, status: 'revoked', revoked_at: now, revoked_by: actorId(ctx), revoked_comment: 'rotated' };
    }
    const end = new Date(now.getTime() + overlapMs);
    return { replaced_by: successorId, expires_at: doc.expires_at && doc.expires_at < end ? doc.expires_at : end };
  }

  // ---- changes to one key ----

  private async find(ctx: CallContext, id: string): Promise<StoredKey> {
    validateKeyId(id);
    const doc = await this.d.keys.findInOrg(ctx.orgId, id);
    if (!doc) throw keyNotFound(id);
    return doc;
  }

  private requireState(doc: StoredKey, allowed: KeyStateName[]): void {
    const state = documentState(doc, this.d.now());
    if (!allowed.includes(state)) {
      throw new DomainError(
        STATE_REASON[state],
        `key ${doc._id} is ${state.toLowerCase()}; allowed from: ${allowed.join(', ').toLowerCase()}`,
        [],
        {
          key_id: doc._id,
          state,
        },
      );
    }
  }

  /**
   * Applies a change to one key, serialized per version (see KeyStore.claimVersion). The
   * change-log entry goes first: an instance that reads it before the change lands re-reads it
   * on its next poll (the skew margin), so a crash between the two never hides a change.
   */
  private async change(ctx: CallContext, id: string, c: Change): Promise<StoredKey> {
    const { doc, now } = await this.claim(ctx, id, c);
    const etag = newEtag();
    const change = await this.logChange(doc, 'changed', etag, now);
    const updated = await this.d.keys.applyChange(ctx.orgId, id, doc.etag, { ...c.set(doc, now), updated_at: now, etag });
    if (!updated) throw keyNotFound(id); // deleted between the claim and the write
    this.d.onKeyChanged(updated, change);
    return updated;
  }

  private async logChange(doc: StoredKey, kind: KeyChange['kind'], etag: string, at: Date): Promise<KeyChange> {
    const change = changeEntry(doc, kind, etag, at);
    await this.d.changeLog.record(change);
    return change;
  }

  /** Revokes the key (from any state but revoked), then its place and sealed secret go. */
  private async end(ctx: CallContext, id: string, revokedBy: string, comment: string | null, check?: (doc: StoredKey) => void) {
    const doc = await this.change(ctx, id, {
      from: ['ACTIVE', 'EXPIRED', 'ARCHIVED'],
      check,
      set: (_d, now) => ({ status: 'revoked', revoked_at: now, revoked_by: revokedBy, revoked_comment: comment }),
    });
    await this.afterEnd(ctx.orgId, id);
    return doc;
  }

  /** A key that stopped being live: its place under the cap and any sealed copy of its secret go. */
  private async afterEnd(orgId: string, id: string): Promise<void> {
    await this.followUp('slot release', () => this.d.slots.release(orgId, id));
    await this.followUp('sealed secret removal', () => this.d.createRequests.forgetSecret(orgId, id));
  }

  /** Work after a change that already happened: see followUp (keyDocuments.ts). */
  private followUp(what: string, fn: () => Promise<void>): Promise<void> {
    return followUp(what, fn, this.d.onFollowUpFailed);
  }

  private async claim(ctx: CallContext, id: string, c: Claim): Promise<{ doc: StoredKey; now: Date }> {
    for (let attempt = 0; attempt < MAX_CHANGE_ATTEMPTS; attempt++) {
      const doc = await this.find(ctx, id);
      if (c.etag !== undefined && doc.etag !== c.etag) throw etagMismatch(id);
      this.requireState(doc, c.from);
      c.check?.(doc);
      const now = this.d.now();
      if (await this.d.keys.claimVersion(id, doc.etag, now)) return { doc, now };
      // Someone changed this version first: with an etag that is a conflict, without one re-read.
      if (c.etag !== undefined) throw etagMismatch(id);
    }
    throw new DomainError('ETAG_MISMATCH', `key ${id} is being changed concurrently; retry`, [], { key_id: id });
  }

  private async takeSlot(orgId: string, keyId: string, now: Date): Promise<string> {
    const cap = await this.d.organizations.keyLimit(orgId, this.d.orgKeyLimit);
    const slot = await this.d.slots.acquire(orgId, keyId, cap, now);
    if (!slot) throw planLimitReached(cap);
    return slot;
  }
}

/** The bounds a validated create would give the new key. */
function createBounds(v: ValidCreateKey): KeyBounds {
  const r = v.rateLimit;
  return {
    scopes: v.scopes,
    environment: v.environment,
    expiresAt: v.expiresAt,
    rateLimit: r && { limit: r.limit, windowSeconds: r.window_seconds },
    workspaceId: v.workspaceId,
  };
}

const retiring = (doc: StoredKey, why: string) =>
  new DomainError('KEY_RETIRING', `key ${doc._id} was rotated to ${doc.replaced_by ?? ''}; ${why}`, [], {
    key_id: doc._id,
    replaced_by: doc.replaced_by ?? '',
  });

const etagMismatch = (id: string) =>
  new DomainError('ETAG_MISMATCH', `key ${id} changed since that etag was read; get it again and retry`, [], { key_id: id });
