import type { KeyChange, LoggedChange } from '../../../src/domain/model';
import type { ChangeLog } from '../../../src/domain/ports';
import { Faults } from './faults';

/** The key change log in memory, in the order entries were written. */
export class InMemoryChangeLog implements ChangeLog {
  readonly entries: KeyChange[] = [];
  readonly faults = new Faults<'record'>();

  async record(entry: KeyChange): Promise<void> {
    this.faults.check('record');
    this.entries.push(structuredClone(entry));
  }

  async since(since: Date): Promise<LoggedChange[]> {
    return this.entries
      .filter((e) => e.at >= since)
      .map(({ _id, key_id, hash, etag, kind, at }) => ({ _id, key_id, hash, etag, kind, at }));
  }
}
