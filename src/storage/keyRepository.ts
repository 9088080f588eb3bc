import type { Filter } from 'mongodb';
import type { UsageBatch } from '../domain/usageRecorder';
import type { KeyDocument, StoredStatus } from './documents';
import type { Collections } from './mongo';
import { isDuplicateKey } from './slotRepository';

export interface ListQuery {
  orgId: string;
  statuses: StoredStatus[];
  /** Only keys whose last use is before this time, or never used. */
  unusedSince?: Date;
  /** Exclusive position to continue after (newest first). */
  after?: { createdAt: Date; id: string };
  limit: number;
}

/** api_keys: every query is scoped by org_id except the lookup by hash, which Verify owns. */
export class KeyRepository {
  private readonly keys: Collections['keys'];
  private readonly usage: Collections['usage'];
  private readonly mutations: Collections['mutations'];

  constructor(c: Pick<Collections, 'keys' | 'usage' | 'mutations'>) {
    this.keys = c.keys;
    this.usage = c.usage;
    this.mutations = c.mutations;
  }

  async insert(doc: KeyDocument): Promise<void> {
    await this.keys.insertOne(doc);
  }

  findInOrg(orgId: string, id: string): Promise<KeyDocument | null> {
    return this.keys.findOne({ _id: id, org_id: orgId });
  }

  findByHash(hash: string): Promise<KeyDocument | null> {
    return this.keys.findOne({ hash });
  }

  list(q: ListQuery): Promise<KeyDocument[]> {
    const filter: Filter<KeyDocument> = { org_id: q.orgId, status: { $in: q.statuses } };
    const and: Filter<KeyDocument>[] = [];
    if (q.after) {
      and.push({
        $or: [
          { created_at: { $lt: q.after.createdAt } },
          { created_at: q.after.createdAt, _id: { $lt: q.after.id } },
        ],
      });
    }
    if (q.unusedSince) {
      and.push({ $or: [{ last_used_at: null }, { last_used_at: { $lt: q.unusedSince } }] });
    }
    if (and.length > 0) filter.$and = and;
    return this.keys.find(filter).sort({ created_at: -1, _id: -1 }).limit(q.limit).toArray();
  }

  /**
   * Claims the right to change the key at version `etag`: true for exactly one caller per
   * version, on any MongoDB-wire server (the unique _id decides, not a conditional update).
   */
  async claimVersion(keyId: string, etag: string, now: Date): Promise<boolean> {
    try {
      await this.mutations.insertOne({ _id: `${keyId}:${etag}`, key_id: keyId, at: now });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /** Writes a claimed change; the etag filter makes it a no-op if the version moved anyway. */
  async applyChange(orgId: string, id: string, fromEtag: string, set: Partial<KeyDocument>): Promise<KeyDocument | null> {
    const res = await this.keys.updateOne({ _id: id, org_id: orgId, etag: fromEtag }, { $set: set });
    if (res.matchedCount === 0) return null;
    return this.keys.findOne({ _id: id, org_id: orgId });
  }

  async remove(orgId: string, id: string): Promise<void> {
    await this.keys.deleteOne({ _id: id, org_id: orgId });
    await this.mutations.deleteMany({ key_id: id });
  }

  /** Keys changed at or after `since` (updated_at index), for cross-instance cache invalidation. */
  changedSince(since: Date): Promise<Pick<KeyDocument, 'hash' | 'updated_at' | 'etag'>[]> {
    return this.keys
      .find({ updated_at: { $gte: since } }, { projection: { _id: 0, hash: 1, updated_at: 1, etag: 1 } })
      .toArray();
  }

  /**
   * One write per key per batch: $max keeps last_used_at monotonic whatever order instances
   * flush in, and deliberately leaves updated_at alone (usage is not a change to the key).
   */
  async writeUsage(batch: UsageBatch): Promise<void> {
    if (batch.lastUsed.size > 0) {
      await this.keys.bulkWrite(
        [...batch.lastUsed].map(([id, at]) => ({ updateOne: { filter: { _id: id }, update: { $max: { last_used_at: at } } } })),
        { ordered: false },
      );
    }
    if (batch.daily.size > 0) {
      await this.usage.bulkWrite(
        [...batch.daily].map(([k, n]) => {
          const [keyId, day] = k.split('|');
          return {
            updateOne: {
              filter: { _id: k },
              update: { $inc: { count: n }, $setOnInsert: { key_id: keyId, day } },
              upsert: true,
            },
          };
        }),
        { ordered: false },
      );
    }
  }
}
