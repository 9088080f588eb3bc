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

  note(keyId: string, at: Date): void {
    const prev = this.batch.lastUsed.get(keyId);
    if (!prev || prev < at) this.batch.lastUsed.set(keyId, at);
    const day = `${keyId}|${at.toISOString().slice(0, 10)}`;
    this.batch.daily.set(day, (this.batch.daily.get(day) ?? 0) + 1);
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
