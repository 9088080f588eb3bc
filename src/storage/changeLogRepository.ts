import type { KeyChange, LoggedChange } from '../domain/model';
import type { ChangeLog } from '../domain/ports';
import type { Collections, QueryLimits } from './mongo';

/**
 * key_changes: the log other instances poll to learn which cached keys to drop. Only inserts
 * (no two writers ever share a document), read by time; pruned by the retention sweep, so a poll
 * costs what changed recently, never what is stored.
 */
export class ChangeLogRepository implements ChangeLog {
  constructor(
    private readonly changes: Collections['changes'],
    private readonly limits: QueryLimits,
  ) {}

  async record(entry: KeyChange): Promise<void> {
    await this.changes.insertOne(entry);
  }

  /** Entries logged at or after `since` (index `at`). */
  since(since: Date): Promise<LoggedChange[]> {
    return this.changes
      .find(
        { at: { $gte: since } },
        {
          ...this.limits.options(),
          projection: { _id: 1, hash: 1, etag: 1, at: 1, kind: 1, key_id: 1 } satisfies Record<keyof LoggedChange, 1>,
        },
      )
      .toArray();
  }
}
