import { actorId, assertNoEscalation, authorize } from './authorization';
import { DomainError, keyNotFound } from './errors';
import { newId } from './ids';
import { describeSecret, generateSecret } from './keyFormat';
import { decodePageToken, encodePageToken } from './pageToken';
import type { CallContext } from './principal';
import {
  normalizePageSize,
  validateComment,
  validateCreateKey,
  validateKeyId,
  type CreateKeyInput,
} from './validation';
import { randomBytes } from 'node:crypto';
import type { KeyDocument, StoredStatus } from '../storage/documents';
import type { KeyRepository } from '../storage/keyRepository';
import type { OrganizationRepository } from '../storage/organizationRepository';
import type { SlotRepository } from '../storage/slotRepository';

export interface KeyManagerDeps {
  keys: KeyRepository;
  slots: SlotRepository;
  organizations: OrganizationRepository;
  now: () => Date;
  keyPrefix: string;
  orgKeyLimit: number;
  pageTokenKey: Buffer;
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

/** The key lifecycle use cases. Every method is scoped to ctx.orgId and authorized first. */
export class KeyManager {
  constructor(private readonly d: KeyManagerDeps) {}

  async create(ctx: CallContext, input: CreateKeyInput): Promise<{ key: KeyDocument; secret: string }> {
    authorize(ctx, 'write');
    const now = this.d.now();
    const v = validateCreateKey(input, now);
    assertNoEscalation(ctx, v.scopes);
    const secret = generateSecret(this.d.keyPrefix, v.environment);
    const described = describeSecret(secret);
    const doc: KeyDocument = {
      _id: newId('key'),
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
    };
    await this.takeSlot(ctx.orgId, doc._id, now);
    try {
      await this.d.keys.insert(doc);
    } catch (err) {
      await this.d.slots.release(ctx.orgId, doc._id);
      throw err;
    }
    return { key: doc, secret };
  }

  async get(ctx: CallContext, id: string): Promise<KeyDocument> {
    authorize(ctx, 'read');
    validateKeyId(id);
    const doc = await this.d.keys.findInOrg(ctx.orgId, id);
    if (!doc) throw keyNotFound(id);
    return doc;
  }

  async list(ctx: CallContext, input: ListKeysInput): Promise<KeyPage> {
    authorize(ctx, 'read');
    const pageSize = normalizePageSize(input.pageSize);
    const statuses: StoredStatus[] = ['active'];
    if (input.includeArchived) statuses.push('archived');
    if (input.includeRevoked) statuses.push('revoked');
    // A token is only valid with the organization and filters it was issued for (AIP-158).
    const scope = ['keys', ctx.orgId, statuses.join(','), input.unusedSince?.toISOString() ?? ''].join('|');
    let after: { createdAt: Date; id: string } | undefined;
    if (input.pageToken !== '') {
      const pos = decodePageToken(input.pageToken, scope, this.d.pageTokenKey);
      if (!pos) {
        throw new DomainError('INVALID_PAGE_TOKEN', 'page_token is invalid, expired, or was issued for other filters', [
          { field: 'page_token', reason: 'INVALID_PAGE_TOKEN', description: 'not a token returned by ListKeys for this request' },
        ]);
      }
      after = { createdAt: new Date(pos.t), id: pos.id };
    }
    // One extra row tells whether another page exists without a count query.
    const rows = await this.d.keys.list({
      orgId: ctx.orgId,
      statuses,
      unusedSince: input.unusedSince,
      after,
      limit: pageSize + 1,
    });
    const keys = rows.slice(0, pageSize);
    const last = keys[keys.length - 1];
    const nextPageToken =
      rows.length > pageSize ? encodePageToken({ t: last.created_at.getTime(), id: last._id }, scope, this.d.pageTokenKey) : '';
    return { keys, nextPageToken };
  }

  async revoke(ctx: CallContext, id: string, comment: string): Promise<KeyDocument> {
    validateKeyId(id);
    const reason = validateComment(comment);
    if (!this.isSelfRevoke(ctx, id)) authorize(ctx, 'write');
    const now = this.d.now();
    const doc = await this.d.keys.transition(ctx.orgId, id, ['active', 'archived'], {
      status: 'revoked',
      revoked_at: now,
      revoked_by: actorId(ctx),
      revoked_comment: reason || null,
      updated_at: now,
      etag: newEtag(),
    });
    if (!doc) {
      const existing = await this.d.keys.findInOrg(ctx.orgId, id);
      if (!existing) throw keyNotFound(id);
      throw new DomainError('KEY_REVOKED', `key ${id} is already revoked`, [], { key_id: id });
    }
    this.d.onKeyChanged(doc);
    await this.d.slots.release(ctx.orgId, id);
    return doc;
  }

  /** Seed 002: a key with allow_self_revoke may revoke itself, whatever its scopes. */
  private isSelfRevoke(ctx: CallContext, id: string): boolean {
    return ctx.principal.kind === 'apiKey' && ctx.principal.id === id && ctx.principal.allowSelfRevoke;
  }

  private async takeSlot(orgId: string, keyId: string, now: Date): Promise<void> {
    const cap = await this.d.organizations.keyLimit(orgId, this.d.orgKeyLimit);
    if (!(await this.d.slots.acquire(orgId, keyId, cap, now))) {
      throw new DomainError(
        'PLAN_LIMIT_REACHED',
        `organization has reached its cap of ${cap} live keys; revoke or archive an unused key, or raise the plan's limit`,
        [],
        { limit: String(cap) },
      );
    }
  }
}
