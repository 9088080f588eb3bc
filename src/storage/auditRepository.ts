import type { Filter } from 'mongodb';
import type { AuditEventDocument } from './documents';
import type { Collections } from './mongo';

export interface AuditQuery {
  orgId: string;
  action?: string;
  keyId?: string;
  startTime?: Date;
  endTime?: Date;
  after?: { time: Date; id: string };
  limit: number;
}

export class AuditRepository {
  constructor(private readonly audit: Collections['audit']) {}

  async insert(event: AuditEventDocument): Promise<void> {
    await this.audit.insertOne(event);
  }

  /** Newest first; `after` continues below a previous page's last event. */
  list(q: AuditQuery): Promise<AuditEventDocument[]> {
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
    return this.audit.find(filter).sort({ time: -1, _id: -1 }).limit(q.limit).toArray();
  }
}
