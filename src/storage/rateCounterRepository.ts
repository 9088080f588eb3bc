import type { OthersRateCounts, OwnRateCount, RateCounterStore, RateWindow } from '../domain/ports';
import type { Collections, QueryLimits } from './mongo';
import { chunks } from './writeBatches';

const windowKey = (keyId: string, windowMs: number, start: number) => `${keyId}|${windowMs}|${start}`;

/**
 * rate_counters: one document per instance, key and window, written by that instance alone with
 * $set (never $inc on a shared document: FerretDB loses concurrent updates of one document).
 * Writes go in commands of at most MAX_DOCUMENTS_PER_WRITE; the others' counters of up to that
 * many windows are read with one query (index key_window).
 */
export class RateCounterRepository implements RateCounterStore {
  constructor(
    private readonly counters: Collections['rateCounters'],
    /** This process's id in the _id of its documents; unique per start. */
    private readonly instance: string,
    /**
     * Limits without a caller: one exchange serves every VerifyKey call waiting for it, so one
     * caller cancelling must not fail it for the others.
     */
    private readonly limits: QueryLimits,
  ) {}

  async exchange(own: readonly OwnRateCount[], windows: readonly RateWindow[]): Promise<OthersRateCounts[]> {
    for (const batch of chunks(own)) {
      await this.counters.bulkWrite(
        batch.map((c) => ({
          updateOne: {
            filter: { _id: `${windowKey(c.keyId, c.windowMs, c.start)}|${this.instance}` },
            update: {
              $set: {
                key_id: c.keyId,
                window_start: new Date(c.start),
                window_end: new Date(c.start + c.windowMs),
                instance: this.instance,
                count: c.count,
                claim: c.claim,
              },
            },
            upsert: true,
          },
        })),
        { ordered: false },
      );
    }
    const sums = new Map<string, OthersRateCounts>();
    for (const batch of chunks(windows)) {
      const docs = await this.counters
        .find(
          {
            key_id: { $in: [...new Set(batch.map((w) => w.keyId))] },
            window_start: { $in: [...new Set(batch.map((w) => w.start))].map((ms) => new Date(ms)) },
          },
          { ...this.limits.options(), projection: { key_id: 1, window_start: 1, window_end: 1, instance: 1, count: 1, claim: 1 } },
        )
        .toArray();
      for (const d of docs) {
        if (d.instance === this.instance) continue;
        const start = d.window_start.getTime();
        const id = windowKey(d.key_id, d.window_end.getTime() - start, start);
        const sum = sums.get(id) ?? { count: 0, claim: 0, instances: 0 };
        sums.set(id, { count: sum.count + d.count, claim: sum.claim + Math.max(d.claim, d.count), instances: sum.instances + 1 });
      }
    }
    return windows.map((w) => sums.get(windowKey(w.keyId, w.windowMs, w.start)) ?? { count: 0, claim: 0, instances: 0 });
  }
}
