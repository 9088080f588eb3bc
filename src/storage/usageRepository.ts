import type { UsageEntries } from '../domain/model';
import type { UsageSink, UsageWriteOutcome } from '../domain/ports';
import type { Collections } from './mongo';
import { chunks } from './writeBatches';

/**
 * key_last_used and key_usage_daily. Usage never touches api_keys, so it cannot race a change to
 * a key. Writes go in commands of at most MAX_DOCUMENTS_PER_WRITE statements.
 */
export class UsageRepository implements UsageSink {
  private readonly usage: Collections['usage'];
  private readonly lastUsed: Collections['lastUsed'];

  constructor(c: Pick<Collections, 'usage' | 'lastUsed'>) {
    this.usage = c.usage;
    this.lastUsed = c.lastUsed;
  }

  /**
   * $max keeps last_used_at monotonic and $inc adds counts, whatever order instances flush in.
   * Commands go one after another; when one fails, the entries from it on are handed back (a
   * failed command may still have landed, so its counts can be added twice: at most one command's
   * worth, only when storage fails mid-flush).
   */
  async write(entries: UsageEntries): Promise<UsageWriteOutcome> {
    const lastUsed = chunks(entries.lastUsed);
    const daily = chunks(entries.daily);
    let i = 0;
    let j = 0;
    try {
      for (; i < lastUsed.length; i++) {
        await this.lastUsed.bulkWrite(
          lastUsed[i].map(({ keyId, at }) => ({
            updateOne: { filter: { _id: keyId }, update: { $max: { last_used_at: at } }, upsert: true },
          })),
          { ordered: false },
        );
      }
      for (; j < daily.length; j++) {
        await this.usage.bulkWrite(
          daily[j].map(({ keyId, day, count }) => ({
            updateOne: {
              filter: { _id: `${keyId}|${day}` },
              update: { $inc: { count }, $setOnInsert: { key_id: keyId, day } },
              upsert: true,
            },
          })),
          { ordered: false },
        );
      }
    } catch (error) {
      return { ok: false, unwritten: { lastUsed: lastUsed.slice(i).flat(), daily: daily.slice(j).flat() }, error };
    }
    return { ok: true };
  }
}
