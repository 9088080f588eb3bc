/** A batch of usage to write: the latest use and the number of verifications, per key and day. */
export interface UsageBatch {
  lastUsed: Map<string, Date>;
  /** `${keyId}|${YYYY-MM-DD}` → count */
  daily: Map<string, number>;
}

/**
 * Notes key usage in memory so Verify never writes; flush() hands over one batch (one write per
 * key per flush at most) and starts a new one.
 */
export class UsageRecorder {
  private batch: UsageBatch = { lastUsed: new Map(), daily: new Map() };
  // The UTC day of the last note, so the hot path formats a date once a day, not once a call.
  private day = { start: 0, end: 0, label: '' };

  note(keyId: string, at: Date): void {
    const prev = this.batch.lastUsed.get(keyId);
    if (!prev || prev < at) this.batch.lastUsed.set(keyId, at);
    const day = `${keyId}|${this.dayLabel(at.getTime())}`;
    this.batch.daily.set(day, (this.batch.daily.get(day) ?? 0) + 1);
  }

  private dayLabel(ms: number): string {
    if (ms < this.day.start || ms >= this.day.end) {
      const start = ms - (ms % 86_400_000);
      this.day = { start, end: start + 86_400_000, label: new Date(start).toISOString().slice(0, 10) };
    }
    return this.day.label;
  }

  get pending(): number {
    return this.batch.lastUsed.size;
  }

  take(): UsageBatch {
    const out = this.batch;
    this.batch = { lastUsed: new Map(), daily: new Map() };
    return out;
  }

  /** Puts a batch back after a failed write, so usage is not lost while storage is down. */
  restore(b: UsageBatch): void {
    for (const [id, at] of b.lastUsed) {
      const prev = this.batch.lastUsed.get(id);
      if (!prev || prev < at) this.batch.lastUsed.set(id, at);
    }
    for (const [k, n] of b.daily) this.batch.daily.set(k, (this.batch.daily.get(k) ?? 0) + n);
  }
}
