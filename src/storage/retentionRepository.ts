import type { Collection, Document, Filter } from 'mongodb';
import type { OnDeleted, RetentionStore } from '../domain/ports';
import { CLAIM_GRACE_MS } from './keyRepository';
import type { Collections, QueryLimits } from './mongo';
import { MAX_DOCUMENTS_PER_WRITE } from './writeBatches';

/**
 * Deletes what the retention sweep expires, without TTL indexes (FerretDB has none): ids found
 * with a limit, then one deleteMany per at most MAX_DOCUMENTS_PER_WRITE of them, until nothing
 * matches or `budget` documents were removed. Each delete repeats the filter, so a document
 * replaced under the same _id since it was found is kept.
 */
export class RetentionRepository implements RetentionStore {
  constructor(
    private readonly c: Pick<Collections, 'keys' | 'usage' | 'audit' | 'mutations' | 'createRequests' | 'changes' | 'rateCounters'>,
    private readonly limits: QueryLimits,
  ) {}

  /** Daily usage counts of days before `day` (YYYY-MM-DD, UTC). */
  usageDaysBefore(day: string, budget: number, onDeleted: OnDeleted): Promise<number> {
    return deleteMatching(this.c.usage, { day: { $lt: day } }, budget, onDeleted, this.limits);
  }

  auditEventsBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number> {
    return deleteMatching(this.c.audit, { time: { $lt: time } }, budget, onDeleted, this.limits);
  }

  /**
   * Requests whose idempotency window has ended: the end stamped on them, or the window now
   * configured if that ends sooner (a shortened window applies to requests already made).
   */
  createRequestsExpired(now: Date, createdBefore: Date, budget: number, onDeleted: OnDeleted): Promise<number> {
    return deleteMatching(
      this.c.createRequests,
      { $or: [{ expires_at: { $lt: now } }, { created_at: { $lt: createdBefore } }] },
      budget,
      onDeleted,
      this.limits,
    );
  }

  keyChangesBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number> {
    return deleteMatching(this.c.changes, { at: { $lt: time } }, budget, onDeleted, this.limits);
  }

  rateCountersEndedBefore(time: Date, budget: number, onDeleted: OnDeleted): Promise<number> {
    return deleteMatching(this.c.rateCounters, { window_end: { $lt: time } }, budget, onDeleted, this.limits);
  }

  /**
   * Version claims that can no longer decide a change (KeyRepository.claimVersion): past the
   * claim grace and with their key gone or moved to another version (versions never come back),
   * or older than `finishedBefore`, when even a change that never landed is over. A claim within
   * the grace is kept whatever its key's state, so a claim inserted again under the same _id
   * (a stale etag, a takeover) is never removed by a sweep that read the older one.
   */
  async finishedClaims(now: Date, finishedBefore: Date, budget: number, onDeleted: OnDeleted): Promise<number> {
    const pastGrace = new Date(now.getTime() - CLAIM_GRACE_MS);
    let deleted = 0;
    // Claims still live stay where they are: page by _id so each is read once per sweep.
    let after = '';
    while (deleted < budget) {
      const limit = Math.min(MAX_DOCUMENTS_PER_WRITE, budget - deleted);
      const claims = await this.c.mutations
        .find({ _id: { $gt: after }, at: { $lt: pastGrace } }, { ...this.limits.options(), projection: { key_id: 1, at: 1 } })
        .sort({ _id: 1 })
        .limit(limit)
        .toArray();
      if (claims.length === 0) break;
      after = claims[claims.length - 1]._id;
      const versions = await this.c.keys
        .find({ _id: { $in: [...new Set(claims.map((m) => m.key_id))] } }, { ...this.limits.options(), projection: { etag: 1 } })
        .toArray();
      const live = new Set(versions.map((k) => `${k._id}:${k.etag}`));
      const finished = claims.filter((m) => m.at < finishedBefore || !live.has(m._id)).map((m) => m._id);
      if (finished.length > 0) {
        const { deletedCount } = await this.c.mutations.deleteMany({ _id: { $in: finished }, at: { $lt: pastGrace } });
        deleted += deletedCount;
        onDeleted(deletedCount);
      }
      if (claims.length < limit) break;
    }
    return deleted;
  }
}

async function deleteMatching<T extends Document & { _id: string }>(
  collection: Collection<T>,
  filter: Filter<T>,
  budget: number,
  onDeleted: OnDeleted,
  limits: QueryLimits,
): Promise<number> {
  let deleted = 0;
  while (deleted < budget) {
    const limit = Math.min(MAX_DOCUMENTS_PER_WRITE, budget - deleted);
    const ids = (
      await collection
        .find(filter, { ...limits.options(), projection: { _id: 1 } })
        .limit(limit)
        .toArray()
    ).map((d) => d._id);
    if (ids.length === 0) break;
    const { deletedCount } = await collection.deleteMany({ ...filter, _id: { $in: ids } });
    deleted += deletedCount;
    onDeleted(deletedCount);
    // Fewer than asked for: nothing else matched. None removed: another instance is sweeping the
    // same documents; leave the rest to the next run rather than spin.
    if (ids.length < limit || deletedCount === 0) break;
  }
  return deleted;
}
