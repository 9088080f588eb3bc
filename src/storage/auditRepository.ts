import type { Filter } from 'mongodb';
import type { AuditEntry } from '../domain/model';
import type { AuditQuery, AuditStore } from '../domain/ports';
import type { AuditEventDocument } from './documents';
import type { Collections, QueryLimits } from './mongo';
import { isDuplicateKey } from './slotRepository';

export class AuditRepository implements AuditStore {
  constructor(
    private readonly audit: Collections['audit'],
    private readonly limits: QueryLimits,
  ) {}

  async insert(event: AuditEntry): Promise<void> {
    try {
      await this.audit.insertOne(event);
    } catch (err) {
      // The event is there already: an earlier attempt landed but its answer was lost.
      if (!isDuplicateKey(err)) throw err;
    }
  }

  /** Newest first; `after` continues below a previous page's last event. */
  list(q: AuditQuery): Promise<AuditEntry[]> {
    const filter: Filter<AuditEventDocument> = { org_id: q.orgId };
    if (q.action) filter.action = q.action;
    if (q.keyId) filter.key_id = q.keyId;
    const time: { $gte?: Date; $lt?: Date } = {};
    if (q.startTime) time.$gte = q.startTime;
    if (q.endTime) time.$lt = q.endTime;
    if (q.startTime || q.endTime) filter.time = time;
    if (q.after) {
      filter.$or = [{ time: { $lt: q.after.time } }, { time: q.after.time, _id: { $lt: q.after.id } }];
    }
    return this.audit.find(filter, this.limits.options()).sort({ time: -1, _id: -1 }).limit(q.limit).toArray();
  }
}
