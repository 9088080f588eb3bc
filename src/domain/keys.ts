import { randomBytes } from 'node:crypto';
import type { AuditLog } from './audit';
import { actorId, assertNoEscalation, authorize, authorizeRevoke } from './authorization';
import { DomainError, keyNotFound, type Reason } from './errors';
import { newId } from './ids';
import { describeSecret, generateSecret } from './keyFormat';
import { keyState, type KeyStateName } from './keyState';
import { positionFromToken, toPage } from './paging';
import type { CallContext } from './principal';
import type { SecretBox } from './secretBox';
import {
  normalizePageSize,
  validateComment,
  validateCreateKey,
  validateKeyId,
  validateOptionalTime,
  validateOverlap,
  validateUpdateKey,
  type CreateKeyInput,
  type UpdateKeyInput,
  type ValidCreateKey,
} from './validation';
import type { CreateRequestRepository } from '../storage/createRequestRepository';
import type { KeyDocument, StoredStatus } from '../storage/documents';
import type { KeyRepository } from '../storage/keyRepository';
import type { OrganizationRepository } from '../storage/organizationRepository';
import type { SlotRepository } from '../storage/slotRepository';

export interface KeyManagerDeps {
  keys: KeyRepository;
  slots: SlotRepository;
  organizations: OrganizationRepository;
  createRequests: CreateRequestRepository;
  audit: AuditLog;
  /** Unset: recoverable keys are refused. */
  secretBox?: SecretBox;
  now: () => Date;
  keyPrefix: string;
  orgKeyLimit: number;
  pageTokenKey: Buffer;
  rotation: { maxOverlapSeconds: number; defaultOverlapSeconds: number };
  idempotencyWindowSeconds: number;
  /** Called after any change to a key, so this instance's Verify cache drops it before the RPC answers. */
  onKeyChanged: (key: KeyDocument) => void;
}

export interface ListKeysInput {
  pageSize: number;
  pageToken: string;
  includeRevoked: boolean;
  includeArchived: boolean;
  unusedSince?: Date;
}

export interface KeyPage {
  keys: KeyDocument[];
  nextPageToken: string;
}

const newEtag = () => randomBytes(9).toString('base64url');
const MAX_CHANGE_ATTEMPTS = 5;
const IDEMPOTENT_WAIT_MS = 5_000;

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
  check?: (doc: KeyDocument) => void;
}

interface Change extends Claim {
  set: (doc: KeyDocument, now: Date) => Partial<KeyDocument>;
}

/** The key lifecycle use cases. Every method is scoped to ctx.orgId and authorized first. */
export class KeyManager {
  constructor(private readonly d: KeyManagerDeps) {}

  create(ctx: CallContext, input: CreateKeyInput): Promise<{ key: KeyDocument; secret: string }> {
    return this.d.audit.around(ctx, 'key.create', (r) => r.key._id, true, async () => {
      authorize(ctx, 'write');
      const now = this.d.now();
      const v = validateCreateKey(input, now);
      assertNoEscalation(ctx, v.scopes);
      if (v.recoverable && !this.d.secretBox) {
        throw new DomainError('RECOVERY_DISABLED', 'recoverable keys need SECRET_ENCRYPTION_KEY to be configured on the service');
      }
      return v.requestId ? this.createOnce(ctx, v, v.requestId) : this.insertNewKey(ctx, v, newId('key'));
    });
  }

  async get(ctx: CallContext, id: string): Promise<KeyDocument> {
    return this.d.audit.around(ctx, 'key.get', id, false, async () => {
      authorize(ctx, 'read');
      return this.find(ctx, id);
    });
  }

  async list(ctx: CallContext, input: ListKeysInput): Promise<KeyPage> {
    return this.d.audit.around(ctx, 'key.list', null, false, async () => {
      authorize(ctx, 'read');
      const pageSize = normalizePageSize(input.pageSize);
      const unusedSince = validateOptionalTime(input.unusedSince, 'unused_since');
      const statuses: StoredStatus[] = ['active'];
      if (input.includeArchived) statuses.push('archived');
      if (input.includeRevoked) statuses.push('revoked');
      // A token is only valid with the organization and filters it was issued for (AIP-158).
      const scope = ['keys', ctx.orgId, statuses.join(','), unusedSince?.toISOString() ?? ''].join('|');
      const pos = positionFromToken(input.pageToken, scope, this.d.pageTokenKey);
      // One extra row tells whether another page exists without a count query.
      const rows = await this.d.keys.list({
        orgId: ctx.orgId,
        statuses,
        unusedSince,
        after: pos && { createdAt: new Date(pos.t), id: pos.id },
        limit: pageSize + 1,
      });
      const page = toPage(rows, pageSize, (k) => ({ t: k.created_at.getTime(), id: k._id }), scope, this.d.pageTokenKey);
      return { keys: page.items, nextPageToken: page.nextPageToken };
    });
  }

  update(ctx: CallContext, id: string, input: UpdateKeyInput, mask: string[], etag: string): Promise<KeyDocument> {
    return this.d.audit.around(ctx, 'key.update', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id, 'key.id');
      const fields = validateUpdateKey(input, mask, this.d.now());
      if (fields.scopes) assertNoEscalation(ctx, fields.scopes);
      return this.change(ctx, id, { from: ['ACTIVE', 'EXPIRED', 'ARCHIVED'], etag: etag || undefined, set: () => fields });
    });
  }

  revoke(ctx: CallContext, id: string, comment: string): Promise<KeyDocument> {
    return this.d.audit.around(ctx, 'key.revoke', id, true, async () => {
      authorizeRevoke(ctx, id);
      validateKeyId(id);
      const reason = validateComment(comment);
      const doc = await this.change(ctx, id, {
        from: ['ACTIVE', 'EXPIRED', 'ARCHIVED'],
        set: (_d, now) => ({ status: 'revoked', revoked_at: now, revoked_by: actorId(ctx), revoked_comment: reason || null }),
      });
      await this.d.slots.release(ctx.orgId, id);
      return doc;
    });
  }

  /** Seed 004: a reversible soft delete; the key fails verification at once and frees its slot. */
  archive(ctx: CallContext, id: string): Promise<KeyDocument> {
    return this.d.audit.around(ctx, 'key.archive', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const doc = await this.change(ctx, id, { from: ['ACTIVE', 'EXPIRED'], set: (_d, now) => ({ status: 'archived', archived_at: now }) });
      await this.d.slots.release(ctx.orgId, id);
      return doc;
    });
  }

  /** Back to ACTIVE (or EXPIRED, if its time has passed); counts against the cap again. */
  reactivate(ctx: CallContext, id: string): Promise<KeyDocument> {
    return this.d.audit.around(ctx, 'key.reactivate', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const current = await this.find(ctx, id);
      this.requireState(current, ['ARCHIVED']);
      const slot = await this.takeSlot(ctx.orgId, id, this.d.now());
      try {
        return await this.change(ctx, id, { from: ['ARCHIVED'], set: () => ({ status: 'active', archived_at: null }) });
      } catch (err) {
        await this.d.slots.releaseSlot(slot);
        throw err;
      }
    });
  }

  /** Seed 003: permanent. The audit trail keeps the fact; the slot is freed. */
  delete(ctx: CallContext, id: string): Promise<void> {
    return this.d.audit.around(ctx, 'key.delete', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const { doc } = await this.claim(ctx, id, { from: ['ACTIVE', 'EXPIRED', 'ARCHIVED', 'REVOKED'] });
      await this.d.keys.remove(ctx.orgId, id);
      await this.d.slots.release(ctx.orgId, id);
      this.d.onKeyChanged(doc);
    });
  }

  /**
   * Issues a successor with the same name, scopes, metadata and environment; the old key keeps
   * working until now + overlap (0 revokes it at once). The successor inherits the old key's
   * slot, so rotation never trips the plan limit.
   */
  rotate(ctx: CallContext, id: string, overlap: { seconds: number; nanos: number } | undefined) {
    return this.d.audit.around(ctx, 'key.rotate', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const overlapMs = validateOverlap(overlap, this.d.rotation);
      const old = await this.find(ctx, id);
      this.checkRotatable(old);
      assertNoEscalation(ctx, old.scopes);
      const secret = generateSecret(this.d.keyPrefix, old.environment);
      const now = this.d.now();
      const successor: KeyDocument = {
        ...this.newDocument(ctx, this.successorSpec(old), secret, newId('key'), now),
        rotated_from: old._id,
      };
      await this.d.keys.insert(successor);
      let previous: KeyDocument;
      try {
        previous = await this.change(ctx, id, {
          from: ['ACTIVE'],
          etag: old.etag,
          check: (doc) => this.checkRotatable(doc),
          set: (doc, at) => this.retireFields(ctx, doc, successor._id, overlapMs, at),
        });
      } catch (err) {
        await this.d.keys.remove(ctx.orgId, successor._id);
        throw err;
      }
      await this.d.slots.transfer(ctx.orgId, id, successor._id);
      return { key: successor, secret, previous };
    });
  }

  /** Seed 003 "Retrieve Key": admin or `write`, recoverable keys only, every read audited. */
  getSecret(ctx: CallContext, id: string): Promise<string> {
    return this.d.audit.around(ctx, 'key.secret.read', id, true, async () => {
      authorize(ctx, 'write');
      validateKeyId(id);
      const doc = await this.find(ctx, id);
      if (!doc.recoverable || !doc.secret_box) {
        throw new DomainError('KEY_NOT_RECOVERABLE', `key ${id} was not created recoverable; its secret cannot be read back`);
      }
      if (!this.d.secretBox) throw new DomainError('RECOVERY_DISABLED', 'SECRET_ENCRYPTION_KEY is not configured on the service');
      return this.d.secretBox.open(doc.secret_box);
    });
  }

  // ---- creation ----

  private async insertNewKey(ctx: CallContext, v: ValidCreateKey, id: string): Promise<{ key: KeyDocument; secret: string }> {
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
    return { key: doc, secret };
  }

  /**
   * AIP-155: the first call with a request id creates the key; concurrent and later retries
   * (within the idempotency window) get the same key, and its secret when it could be kept sealed.
   */
  private async createOnce(ctx: CallContext, v: ValidCreateKey, requestId: string): Promise<{ key: KeyDocument; secret: string }> {
    const deadline = Date.now() + IDEMPOTENT_WAIT_MS;
    while (Date.now() < deadline) {
      const keyId = newId('key');
      if (await this.d.createRequests.claim(ctx.orgId, requestId, keyId, this.d.now())) {
        try {
          const created = await this.insertNewKey(ctx, v, keyId);
          if (this.d.secretBox) await this.d.createRequests.attachSecret(ctx.orgId, requestId, this.d.secretBox.seal(created.secret));
          return created;
        } catch (err) {
          await this.d.createRequests.release(ctx.orgId, requestId, keyId);
          throw err;
        }
      }
      const claim = await this.d.createRequests.find(ctx.orgId, requestId);
      if (!claim) continue; // the first attempt failed and gave the id back: try to claim it
      if (claim.created_at.getTime() < this.d.now().getTime() - this.d.idempotencyWindowSeconds * 1000) {
        await this.d.createRequests.release(ctx.orgId, requestId, claim.key_id);
        continue;
      }
      const key = await this.d.keys.findInOrg(ctx.orgId, claim.key_id);
      if (key && (claim.secret_box || !this.d.secretBox)) {
        return { key, secret: claim.secret_box && this.d.secretBox ? this.d.secretBox.open(claim.secret_box) : '' };
      }
      await new Promise((r) => setTimeout(r, 25)); // the first call is still creating it
    }
    throw new DomainError('STORAGE_UNAVAILABLE', 'a create with this request_id is still in progress; retry shortly');
  }

  private newDocument(ctx: CallContext, v: ValidCreateKey, secret: string, id: string, now: Date): KeyDocument {
    const described = describeSecret(secret);
    return {
      _id: id,
      org_id: ctx.orgId,
      workspace_id: v.workspaceId,
      name: v.name,
      scopes: v.scopes,
      environment: v.environment,
      hash: described.hash,
      start: described.start,
      masked_key: described.maskedKey,
      fingerprint: described.fingerprint,
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
      secret_box: v.recoverable && this.d.secretBox ? this.d.secretBox.seal(secret) : null,
    };
  }

  // ---- rotation ----

  private successorSpec(old: KeyDocument): ValidCreateKey {
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

  private checkRotatable(doc: KeyDocument): void {
    if (doc.replaced_by) {
      throw new DomainError('KEY_ROTATED', `key ${doc._id} was already rotated; rotate its successor ${doc.replaced_by}`, [], {
        replaced_by: doc.replaced_by,
      });
    }
    this.requireState(doc, ['ACTIVE']);
  }

  private retireFields(ctx: CallContext, doc: KeyDocument, successorId: string, overlapMs: number, now: Date): Partial<KeyDocument> {
    if (overlapMs === 0) {
      return { replaced_by: successorId, status: 'revoked', revoked_at: now, revoked_by: actorId(ctx), revoked_comment: 'rotated' };
    }
    const end = new Date(now.getTime() + overlapMs);
    return { replaced_by: successorId, expires_at: doc.expires_at && doc.expires_at < end ? doc.expires_at : end };
  }

  // ---- changes to one key ----

  private async find(ctx: CallContext, id: string): Promise<KeyDocument> {
    validateKeyId(id);
    const doc = await this.d.keys.findInOrg(ctx.orgId, id);
    if (!doc) throw keyNotFound(id);
    return doc;
  }

  private requireState(doc: KeyDocument, allowed: KeyStateName[]): void {
    const state = keyState(doc, this.d.now());
    if (!allowed.includes(state)) {
      throw new DomainError(STATE_REASON[state], `key ${doc._id} is ${state.toLowerCase()}; allowed from: ${allowed.join(', ').toLowerCase()}`, [], {
        key_id: doc._id,
        state,
      });
    }
  }

  /** Applies a change to one key, serialized per version (see KeyRepository.claimVersion). */
  private async change(ctx: CallContext, id: string, c: Change): Promise<KeyDocument> {
    const { doc, now } = await this.claim(ctx, id, c);
    const updated = await this.d.keys.applyChange(ctx.orgId, id, doc.etag, { ...c.set(doc, now), updated_at: now, etag: newEtag() });
    if (!updated) throw keyNotFound(id); // deleted between the claim and the write
    this.d.onKeyChanged(updated);
    return updated;
  }

  private async claim(ctx: CallContext, id: string, c: Claim): Promise<{ doc: KeyDocument; now: Date }> {
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
    if (!slot) {
      throw new DomainError(
        'PLAN_LIMIT_REACHED',
        `organization has reached its cap of ${cap} live keys; revoke or archive an unused key, or raise the plan's limit`,
        [],
        { limit: String(cap) },
      );
    }
    return slot;
  }
}

const etagMismatch = (id: string) =>
  new DomainError('ETAG_MISMATCH', `key ${id} changed since that etag was read; get it again and retry`, [], { key_id: id });
