import type { KeyFilters, StoredKey } from '../../../src/domain/model';
import type { KeyListQuery, KeyStore, KeyUpdate } from '../../../src/domain/ports';
import { CLAIM_GRACE_MS } from '../../../src/storage/keyRepository';
import { Faults } from './faults';

/** Like the unique indexes of api_keys: a second key with an id or hash already stored is refused. */
export class DuplicateKey extends Error {}

/**
 * api_keys in memory, as KeyRepository behaves: ids and hashes unique, reads scoped by
 * organization, one claim per version (taken over once stale), last use kept apart from the key.
 * Reads return copies, so what the caller does to a result never changes what is stored.
 */
export class InMemoryKeyStore implements KeyStore {
  readonly keys = new Map<string, Omit<StoredKey, 'last_used_at'>>();
  readonly lastUsed = new Map<string, Date>();
  private readonly claims = new Map<string, Date>();
  readonly faults = new Faults<'insert' | 'applyChange'>();

  async insert(key: StoredKey): Promise<void> {
    this.faults.check('insert');
    if (this.keys.has(key._id) || [...this.keys.values()].some((k) => k.hash === key.hash))
      throw new DuplicateKey(`duplicate key ${key._id}`);
    const { last_used_at: _notStored, ...stored } = structuredClone(key);
    this.keys.set(key._id, stored);
  }

  async findInOrg(orgId: string, id: string): Promise<StoredKey | null> {
    const key = this.keys.get(id);
    return key && key.org_id === orgId ? this.read(key) : null;
  }

  async list(q: KeyListQuery): Promise<StoredKey[]> {
    const after = q.after;
    return [...this.keys.values()]
      .filter((k) => k.org_id === q.orgId && q.statuses.includes(k.status) && matches(k, q.filters))
      .sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0))
      .filter((k) => !after || k.created_at < after.createdAt || (k.created_at.getTime() === after.createdAt.getTime() && k._id < after.id))
      .slice(0, q.limit)
      .map((k) => this.read(k));
  }

  async claimVersion(keyId: string, etag: string, now: Date): Promise<boolean> {
    const claim = `${keyId}:${etag}`;
    const at = this.claims.get(claim);
    const stale = at !== undefined && at.getTime() < now.getTime() - CLAIM_GRACE_MS && this.keys.get(keyId)?.etag === etag;
    if (at !== undefined && !stale) return false;
    this.claims.set(claim, now);
    return true;
  }

  async applyChange(orgId: string, id: string, fromEtag: string, set: KeyUpdate): Promise<StoredKey | null> {
    this.faults.check('applyChange');
    const key = this.keys.get(id);
    if (!key || key.org_id !== orgId || key.etag !== fromEtag) return null;
    const changed = { ...key, ...structuredClone(set) };
    this.keys.set(id, changed);
    return this.read(changed);
  }

  async remove(orgId: string, id: string): Promise<void> {
    if (this.keys.get(id)?.org_id !== orgId) return;
    this.keys.delete(id);
    this.lastUsed.delete(id);
    for (const claim of this.claims.keys()) if (claim.startsWith(`${id}:`)) this.claims.delete(claim);
  }

  /** What a usage flush would record for the key. */
  markUsed(id: string, at: Date): void {
    this.lastUsed.set(id, at);
  }

  private read(key: Omit<StoredKey, 'last_used_at'>): StoredKey {
    return { ...structuredClone(key), last_used_at: this.lastUsed.get(key._id) ?? null };
  }
}

/** Whether a key passes every ListKeys filter given. */
function matches(k: Omit<StoredKey, 'last_used_at'>, f: KeyFilters): boolean {
  return (
    (f.workspaceId === undefined || k.workspace_id === f.workspaceId) &&
    (f.createdBy === undefined || k.created_by === f.createdBy) &&
    (f.environment === undefined || k.environment === f.environment) &&
    (f.scope === undefined || k.scopes.includes(f.scope))
  );
}
