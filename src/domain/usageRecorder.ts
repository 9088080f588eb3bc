import type { DailyCount, UsageEntries } from './model';
import type { UsageSink, UsageWriteOutcome } from './ports';

/**
 * Notes key usage in memory so Verify never writes; take() hands over one batch (one entry per
 * key, and per key and day, whatever the rate) and starts a new one.
 */
export class UsageRecorder {
  private lastUsed = new Map<string, Date>();
  /** By `${keyId}|${day}`, only to merge notes of one key and day. */
  private daily = new Map<string, DailyCount>();
  // The UTC day of the last note, so the hot path formats a date once a day, not once a call.
  private day = { start: 0, end: 0, label: '' };

  note(keyId: string, at: Date): void {
    this.noteMany(keyId, at, 1);
  }

  /** `count` uses of a key, the latest at `at`, all counted on the UTC day of `at` (as clients report them). */
  noteMany(keyId: string, at: Date, count: number): void {
    this.noteLastUse(keyId, at);
    this.addCount(keyId, this.dayLabel(at.getTime()), count);
  }

  private noteLastUse(keyId: string, at: Date): void {
    const prev = this.lastUsed.get(keyId);
    if (!prev || prev < at) this.lastUsed.set(keyId, at);
  }

  private addCount(keyId: string, day: string, n: number): void {
    const k = `${keyId}|${day}`;
    const entry = this.daily.get(k);
    if (entry) entry.count += n;
    else this.daily.set(k, { keyId, day, count: n });
  }

  private dayLabel(ms: number): string {
    if (ms < this.day.start || ms >= this.day.end) {
      const start = ms - (ms % 86_400_000);
      this.day = { start, end: start + 86_400_000, label: new Date(start).toISOString().slice(0, 10) };
    }
    return this.day.label;
  }

  get pending(): number {
    return this.lastUsed.size;
  }

  take(): UsageEntries {
    const out = {
      lastUsed: [...this.lastUsed].map(([keyId, at]) => ({ keyId, at })),
      daily: [...this.daily.values()],
    };
    this.lastUsed = new Map();
    this.daily = new Map();
    return out;
  }

  /** Puts entries back after a failed write, so usage is not lost while storage is down. */
  restore(entries: UsageEntries): void {
    for (const { keyId, at } of entries.lastUsed) this.noteLastUse(keyId, at);
    for (const { keyId, day, count } of entries.daily) this.addCount(keyId, day, count);
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
export function usageFlushTask(sink: UsageSink, usage: UsageRecorder): () => Promise<void> {
  return async () => {
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
