import type { DailyCount, UsageEntries } from './model';
import type { Clock, UsageSink, UsageWriteOutcome } from './ports';
import type { RateLimiter } from './rateLimiter';

/**
 * Notes key usage in memory so Verify never writes; take() hands over one batch (one entry per
 * key, and per key and day, whatever the rate) and starts a new one.
 */
export class UsageRecorder {
  /** The latest use per key, as epoch milliseconds. */
  private lastUsed = new Map<string, number>();
  /** Counts by UTC day, then by key: the hot path looks a key up without building a `key|day` string. */
  private daily = new Map<string, Map<string, DailyCount>>();
  // The UTC day of the last note and its counts, so the hot path formats a date once a day, not once a call.
  private day = { start: 0, end: 0, label: '', counts: new Map<string, DailyCount>() };

  note(keyId: string, at: Date): void {
    this.noteMany(keyId, at, 1);
  }

  /** `count` uses of a key, the latest at `at`, all counted on the UTC day of `at` (as clients report them). */
  noteMany(keyId: string, at: Date, count: number): void {
    const ms = at.getTime();
    this.noteLastUse(keyId, ms);
    const day = this.dayOf(ms);
    this.addCount(keyId, day.label, day.counts, count);
  }

  private noteLastUse(keyId: string, ms: number): void {
    const prev = this.lastUsed.get(keyId);
    if (prev === undefined || prev < ms) this.lastUsed.set(keyId, ms);
  }

  private addCount(keyId: string, day: string, counts: Map<string, DailyCount>, n: number): void {
    const entry = counts.get(keyId);
    if (entry) entry.count += n;
    else counts.set(keyId, { keyId, day, count: n });
  }

  /** The UTC day of `ms`: its label and counts. */
  private dayOf(ms: number): UsageRecorder['day'] {
    if (ms < this.day.start || ms >= this.day.end) {
      const start = ms - (ms % 86_400_000);
      const label = new Date(start).toISOString().slice(0, 10);
      this.day = { start, end: start + 86_400_000, label, counts: this.countsOfDay(label) };
    }
    return this.day;
  }

  private countsOfDay(label: string): Map<string, DailyCount> {
    let counts = this.daily.get(label);
    if (!counts) this.daily.set(label, (counts = new Map<string, DailyCount>()));
    return counts;
  }

  get pending(): number {
    return this.lastUsed.size;
  }

  take(): UsageEntries {
    const out = {
      lastUsed: [...this.lastUsed].map(([keyId, ms]) => ({ keyId, at: new Date(ms) })),
      daily: [...this.daily.values()].flatMap((counts) => [...counts.values()]),
    };
    this.lastUsed = new Map();
    this.daily = new Map();
    this.day = { start: 0, end: 0, label: '', counts: new Map() };
    return out;
  }

  /** Puts entries back after a failed write, so usage is not lost while storage is down. */
  restore(entries: UsageEntries): void {
    for (const { keyId, at } of entries.lastUsed) this.noteLastUse(keyId, at.getTime());
    for (const { keyId, day, count } of entries.daily) this.addCount(keyId, day, this.countsOfDay(day), count);
  }
}

/** A flush that stopped part way; what it did not write is back in the recorder. */
class UsageNotWritten extends Error {
  constructor(cause: unknown) {
    super(`usage flush failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'UsageNotWritten';
  }
}

/** Writes the usage noted since the last flush; what was not written is kept for the next one. */
export function usageFlushTask(sink: UsageSink, usage: UsageRecorder, rateLimiter: RateLimiter, now: Clock): () => Promise<void> {
  return async () => {
    rateLimiter.prune(now().getTime(), 86_400_000);
    const batch = usage.take();
    let outcome: UsageWriteOutcome;
    try {
      outcome = await sink.write(batch);
    } catch (err) {
      usage.restore(batch);
      throw err;
    }
    if (!outcome.ok) {
      usage.restore(outcome.unwritten);
      throw new UsageNotWritten(outcome.error);
    }
  };
}
