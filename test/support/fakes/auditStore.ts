import type { AuditEntry } from '../../../src/domain/model';
import type { AuditQuery, AuditStore } from '../../../src/domain/ports';

/**
 * Audit events in memory, as AuditRepository behaves: an event whose id is stored already counts
 * as stored. `failNext(n)` makes the next n inserts fail; with `landing`, each failing insert
 * stores the event first (the write landed, its answer was lost).
 */
export class InMemoryAuditStore implements AuditStore {
  readonly events: AuditEntry[] = [];
  /** Every insert, failed ones included, in order. */
  readonly attempts: AuditEntry[] = [];
  private failures = 0;
  private landing = false;

  failNext(n: number, opts: { landing?: boolean } = {}): void {
    this.failures = n;
    this.landing = opts.landing ?? false;
  }

  async insert(event: AuditEntry): Promise<void> {
    this.attempts.push(event);
    const stored = this.events.some((e) => e._id === event._id);
    if (this.failures > 0) {
      this.failures--;
      if (this.landing && !stored) this.events.push(structuredClone(event));
      throw new Error('audit insert: connection reset');
    }
    if (!stored) this.events.push(structuredClone(event));
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const after = q.after;
    return this.events
      .filter(
        (e) =>
          e.org_id === q.orgId &&
          (!q.action || e.action === q.action) &&
          (!q.keyId || e.key_id === q.keyId) &&
          (!q.startTime || e.time >= q.startTime) &&
          (!q.endTime || e.time < q.endTime) &&
          (!after || e.time < after.time || (e.time.getTime() === after.time.getTime() && e._id < after.id)),
      )
      .sort((a, b) => b.time.getTime() - a.time.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0))
      .slice(0, q.limit)
      .map((e) => structuredClone(e));
  }
}
