import { USAGE_CODES, type DailyUsage, type UsageCode, type UsageEntries } from '../domain/model';
import type { DayRange, UsageSink, UsageStore, UsageWriteOutcome } from '../domain/ports';
import type { Collections, QueryLimits } from './mongo';
import { chunks } from './writeBatches';

/** Old counts looked at per query of the attribution; each names the keys whose old counts are attributed together. */
const ATTRIBUTION_BATCH = 500;

/**
 * key_last_used and key_usage_daily. Usage never touches api_keys, so it cannot race a change to
 * a key. Writes go in commands of at most MAX_DOCUMENTS_PER_WRITE statements.
 *
 * A daily count has one writer: its _id names the instance that counts it
 * (`${key_id}|${day}|${instance}|${code}`), and an instance flushes one batch at a time. FerretDB
 * rewrites a whole document per update, so two instances adding to one document could lose one's
 * addition; with one writer each `$inc` lands. Reads add the instances' counts up.
 */
export class UsageRepository implements UsageSink, UsageStore {
  private readonly usage: Collections['usage'];
  private readonly lastUsed: Collections['lastUsed'];
  private readonly keys: Collections['keys'];

  constructor(
    c: Pick<Collections, 'usage' | 'lastUsed' | 'keys'>,
    /** This process's own name in the _id of the counts it writes; no other process may use it. */
    private readonly instance: string,
    private readonly limits: QueryLimits,
  ) {
    this.usage = c.usage;
    this.lastUsed = c.lastUsed;
    this.keys = c.keys;
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
          daily[j].map(({ keyId, orgId, day, code, count }) => ({
            updateOne: {
              filter: { _id: `${keyId}|${day}|${this.instance}|${code}` },
              update: { $inc: { count }, $setOnInsert: { org_id: orgId, key_id: keyId, day, code } },
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

  /**
   * One $group with one $sum per (day, code): FerretDB 1.24 sums wrongly when a $group has more
   * than one $sum (measured), so counts are stored one code per document. A key's counts are found
   * by key_id (the caller checked its organization), which also finds the counts written before
   * usage named its organization.
   */
  async dailyUsage(orgId: string, keyId: string | null, days: DayRange): Promise<DailyUsage[]> {
    const day = { $gte: days.first, $lte: days.last };
    const rows = await this.usage
      .aggregate<{ _id: { day: string; code?: UsageCode | null }; count: number }>(
        [
          { $match: keyId ? { key_id: keyId, day } : { org_id: orgId, day } },
          { $group: { _id: { day: '$day', code: '$code' }, count: { $sum: '$count' } } },
        ],
        this.limits.options(),
      )
      .toArray();
    const byDay = new Map<string, Map<UsageCode, number>>();
    for (const { _id, count } of rows) {
      // No code: counted before usage was counted by result, when only VALID uses were.
      const code = _id.code ?? 'VALID';
      const counts = byDay.get(_id.day) ?? new Map<UsageCode, number>();
      counts.set(code, (counts.get(code) ?? 0) + count);
      byDay.set(_id.day, counts);
    }
    return [...byDay]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([d, counts]) => ({
        day: d,
        counts: USAGE_CODES.map((code) => ({ code, count: counts.get(code) ?? 0 })).filter((c) => c.count > 0),
      }))
      .filter((d) => d.counts.length > 0);
  }

  /**
   * Counts written before usage named its organization (`${key_id}|${day}`, no org_id, no code)
   * get their key's organization, so organization-wide reads find them; those of keys deleted
   * since get "" (no organization's). Each query finds up to ATTRIBUTION_BATCH of them, and every
   * old count of the keys they name is attributed at once.
   */
  async attributeOldCounts(beforeDay: string, budget: number): Promise<number> {
    let seen = 0;
    let attributed = 0;
    while (seen < budget) {
      const limit = Math.min(ATTRIBUTION_BATCH, budget - seen);
      const found = await this.usage
        .find({ org_id: null, day: { $lt: beforeDay } }, { ...this.limits.options(), projection: { key_id: 1 } })
        .limit(limit)
        .toArray();
      if (found.length === 0) break;
      seen += found.length;
      const keyIds = [...new Set(found.map((d) => d.key_id))];
      const keys = await this.keys.find({ _id: { $in: keyIds } }, { ...this.limits.options(), projection: { org_id: 1 } }).toArray();
      const orgOf = new Map(keys.map((k) => [k._id, k.org_id]));
      const byOrg = new Map<string, string[]>();
      for (const id of keyIds) {
        const org = orgOf.get(id) ?? '';
        byOrg.set(org, [...(byOrg.get(org) ?? []), id]);
      }
      for (const [org, ids] of byOrg) {
        for (const part of chunks(ids)) {
          const res = await this.usage.updateMany(
            { key_id: { $in: part }, org_id: null, day: { $lt: beforeDay } },
            { $set: { org_id: org } },
          );
          attributed += res.modifiedCount;
        }
      }
      if (found.length < limit) break;
    }
    return attributed;
  }
}
