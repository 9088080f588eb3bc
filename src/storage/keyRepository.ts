import type { Filter } from 'mongodb';
import type { StoredKey } from '../domain/model';
import type { ImportedKeyStore, KeyDirectory, KeyListQuery, KeyStore, KeysBySecret, KeyUpdate, VerifiedKeyFields } from '../domain/ports';
import type { KeyDocument } from './documents';
import type { Collections, QueryLimits } from './mongo';
import { isDuplicateKey } from './slotRepository';

/** How long a version claim may stand without its change before another change may take it over. */
export const CLAIM_GRACE_MS = 30_000;

/** The fields of VerifiedKeyFields, as a projection for the lookup by hash. */
export const VERIFIED_KEY_FIELDS = {
  _id: 1,
  org_id: 1,
  workspace_id: 1,
  scopes: 1,
  environment: 1,
  expires_at: 1,
  rate_limit: 1,
  metadata: 1,
  created_by: 1,
  allow_self_revoke: 1,
  status: 1,
  etag: 1,
} as const satisfies Record<keyof VerifiedKeyFields, 1>;

/**
 * api_keys: every query is scoped by org_id except the lookups by hash (Verify's, and LookupKey's
 * and ReportLeakedKeys', whose secrets name the keys) and ReportUsage's check of ids.
 */
export class KeyRepository implements KeyStore, KeyDirectory, KeysBySecret, ImportedKeyStore {
  private readonly keys: Collections['keys'];
  private readonly lastUsed: Collections['lastUsed'];
  private readonly mutations: Collections['mutations'];

  constructor(
    c: Pick<Collections, 'keys' | 'lastUsed' | 'mutations'>,
    private readonly limits: QueryLimits,
  ) {
    this.keys = c.keys;
    this.lastUsed = c.lastUsed;
    this.mutations = c.mutations;
  }

  async insert(key: StoredKey): Promise<void> {
    const { last_used_at: _notStored, ...stored } = key;
    await this.keys.insertOne(stored);
  }

  async findInOrg(orgId: string, id: string): Promise<StoredKey | null> {
    const doc = await this.keys.findOne({ _id: id, org_id: orgId }, this.limits.options());
    return doc && (await this.withLastUse([doc]))[0];
  }

  /** Verify's lookup: only the fields it keeps (a cache entry never holds the whole document). */
  findByHash(hash: string): Promise<VerifiedKeyFields | null> {
    return this.keys.findOne({ hash }, { ...this.limits.options(), projection: VERIFIED_KEY_FIELDS });
  }

  /** One query by _id for a whole report (at most LIMITS.usageReportEntriesMax ids), reading only ids and organizations. */
  async organizationsOf(ids: readonly string[]): Promise<Map<string, string>> {
    const found = await this.keys.find({ _id: { $in: [...ids] } }, { ...this.limits.options(), projection: { org_id: 1 } }).toArray();
    return new Map(found.map((d) => [d._id, d.org_id]));
  }

  /** Served by org_status, or with a filter by that filter's index (each has status before the sort). */
  async list(q: KeyListQuery): Promise<StoredKey[]> {
    const filter: Filter<KeyDocument> = { org_id: q.orgId, status: { $in: q.statuses } };
    const f = q.filters;
    if (f.workspaceId !== undefined) filter.workspace_id = f.workspaceId;
    if (f.createdBy !== undefined) filter.created_by = f.createdBy;
    if (f.environment !== undefined) filter.environment = f.environment;
    if (f.scope !== undefined) filter.scopes = f.scope;
    if (q.after) {
      filter.$or = [{ created_at: { $lt: q.after.createdAt } }, { created_at: q.after.createdAt, _id: { $lt: q.after.id } }];
    }
    return this.withLastUse(await this.keys.find(filter, this.limits.options()).sort({ created_at: -1, _id: -1 }).limit(q.limit).toArray());
  }

  private async withLastUse(docs: KeyDocument[]): Promise<StoredKey[]> {
    if (docs.length === 0) return [];
    const uses = await this.lastUsed.find({ _id: { $in: docs.map((d) => d._id) } }, this.limits.options()).toArray();
    const at = new Map(uses.map((u) => [u._id, u.last_used_at]));
    return docs.map((d) => ({ ...d, last_used_at: at.get(d._id) ?? null }));
  }

  /**
   * Claims the right to change the key at version `etag`: true for exactly one caller per
   * version, on any MongoDB-wire server (the unique _id decides, not a conditional update).
   */
  async claimVersion(keyId: string, etag: string, now: Date): Promise<boolean> {
    const _id = `${keyId}:${etag}`;
    if (await this.insertClaim(_id, keyId, now)) return true;
    // A claim whose change never landed (a crash between claim and write) must not block the key
    // for ever: past the grace period, and with the key still at that version, it is taken over.
    const stale = await this.mutations.findOne({ _id, at: { $lt: new Date(now.getTime() - CLAIM_GRACE_MS) } }, this.limits.options());
    if (!stale || !(await this.keys.findOne({ _id: keyId, etag }, { ...this.limits.options(), projection: { _id: 1 } }))) return false;
    // Delete-then-insert keeps the unique _id as the only arbiter between concurrent takers.
    await this.mutations.deleteOne({ _id, at: stale.at });
    return this.insertClaim(_id, keyId, now);
  }

  private async insertClaim(_id: string, keyId: string, now: Date): Promise<boolean> {
    try {
      await this.mutations.insertOne({ _id, key_id: keyId, at: now });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /** Writes a claimed change; the etag filter makes it a no-op if the version moved anyway. */
  async applyChange(orgId: string, id: string, fromEtag: string, set: KeyUpdate): Promise<StoredKey | null> {
    const res = await this.keys.updateOne({ _id: id, org_id: orgId, etag: fromEtag }, { $set: set });
    if (res.matchedCount === 0) return null;
    return this.findInOrg(orgId, id);
  }

  async remove(orgId: string, id: string): Promise<void> {
    await this.keys.deleteOne({ _id: id, org_id: orgId });
    await this.mutations.deleteMany({ key_id: id });
    await this.lastUsed.deleteOne({ _id: id });
  }

  /** Whole keys, in any organization, by the hashes of their secrets: one query for a whole report. */
  async findByHashes(hashes: readonly string[]): Promise<StoredKey[]> {
    return this.withLastUse(await this.keys.find({ hash: { $in: [...hashes] } }, this.limits.options()).toArray());
  }

  /** The unique index on hash decides, across organizations and concurrent imports alike. */
  async insertIfNewHash(key: StoredKey): Promise<boolean> {
    try {
      await this.insert(key);
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }
}
