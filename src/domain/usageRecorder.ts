import { DAY_MS, utcDay } from './utcDays';
import type { DailyCount, UsageCode, UsageEntries } from './model';
import type { UsageSink, UsageWriteOutcome } from './ports';

/** One verification of a key: which key, its organization, and the result. */
export interface KeyUse {
  keyId: string;
  orgId: string;
  code: UsageCode;
}

/**
 * Notes key usage in memory so Verify never writes; take() hands over one batch (one entry per
 * key, and per key, day and result code, whatever the rate) and starts a new one. Only VALID
 * uses move a key's last use.
 */
export class UsageRecorder {
  /** Per key, its latest VALID use (epoch ms: no Date is made per verification). */
  private lastUsed = new Map<string, number>();
  /**
   * Per key, its counts in this batch (one per day and result code: a few). Keyed by the key id
   * alone, which Verify passes as the same string every time: no key string is built per note.
   */
  private daily = new Map<string, DailyCount[]>();
  /** Keys noted in this batch, whatever their results. */
  private keys = new Set<string>();
  // The UTC day of the last note, so the hot path formats a date once a day, not once a call.
  private day = { start: 0, end: 0, label: '' };

  /** `count` uses with one result, the latest at `atMs` (epoch ms), all counted on its UTC day (as clients report them). */
  note(use: KeyUse, atMs: number, count = 1): void {
    if (use.code === 'VALID') this.noteLastUse(use.keyId, atMs);
    this.addCount(use.keyId, use.orgId, this.dayLabel(atMs), use.code, count);
  }

  private noteLastUse(keyId: string, ms: number): void {
    const prev = this.lastUsed.get(keyId);
    if (prev !== undefined && prev >= ms) return;
    this.lastUsed.set(keyId, ms);
    // Cleared with lastUsed: a key already there is already in the set.
    if (prev === undefined) this.keys.add(keyId);
  }

  private addCount(keyId: string, orgId: string, day: string, code: UsageCode, count: number): void {
    const counts = this.daily.get(keyId);
    if (!counts) {
      this.daily.set(keyId, [{ keyId, orgId, day, code, count }]);
      this.keys.add(keyId);
      return;
    }
    for (const c of counts) {
      if (c.day === day && c.code === code) {
        c.count += count;
        return;
      }
    }
    counts.push({ keyId, orgId, day, code, count });
  }

  private dayLabel(ms: number): string {
    if (ms < this.day.start || ms >= this.day.end) {
      const start = ms - (ms % DAY_MS);
      this.day = { start, end: start + DAY_MS, label: utcDay(start) };
    }
    return this.day.label;
  }

  /** Distinct keys noted since the last take(). */
  get pending(): number {
    return this.keys.size;
  }

  take(): UsageEntries {
    const out = {
      lastUsed: [...this.lastUsed].map(([keyId, ms]) => ({ keyId, at: new Date(ms) })),
      daily: [...this.daily.values()].flat(),
    };
    this.lastUsed = new Map();
    this.daily = new Map();
    this.keys = new Set();
    return out;
  }

  /** Puts entries back after a failed write, so usage is not lost while storage is down. */
  restore(entries: UsageEntries): void {
    for (const { keyId, at } of entries.lastUsed) this.noteLastUse(keyId, at.getTime());
    for (const c of entries.daily) this.addCount(c.keyId, c.orgId, c.day, c.code, c.count);
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
