import { DAY_MS } from '../domain/utcDays';
import { UsageRecorder } from '../domain/usageRecorder';
import { LIMITS } from '../domain/validation';
import type { UsageEntries } from '../domain/model';
import type { KeyUsage } from '../gen/apikeys/v1/verify_service';

export interface UsageReporterSettings {
  /** How often noted usage is sent. */
  flushIntervalMs: number;
  /** Distinct keys noted at which a report goes out before the interval is up. */
  maxPendingKeys: number;
  /** ReportUsage with one batch (at most LIMITS.usageReportEntriesMax entries). */
  send(entries: KeyUsage[]): Promise<void>;
  /** False for refusals a retry cannot fix (the batch is then dropped). */
  retryable(err: unknown): boolean;
  onError(err: unknown): void;
  now: () => number;
}

/**
 * One ReportUsage entry per key and UTC day. The last use of a key falls on one day; the counts
 * of its earlier days (a batch across midnight) are stamped with that day's last millisecond.
 */
export function usageReport(batch: UsageEntries): Array<Required<KeyUsage>> {
  const last = new Map(batch.lastUsed.map((l) => [l.keyId, l.at]));
  return batch.daily.map(({ keyId, day, count }) => {
    const at = last.get(keyId);
    const dayStart = Date.parse(`${day}T00:00:00.000Z`);
    const inDay = at && at.getTime() >= dayStart && at.getTime() < dayStart + DAY_MS;
    return { keyId, count, lastUsedTime: inDay ? at : new Date(dayStart + DAY_MS - 1) };
  });
}

/**
 * Verifications answered VALID from the client's cache, noted in memory (the recorder the
 * server uses) and reported in batches. A report that fails for a reason a retry can fix is
 * put back and sent with the next one; uses older than the server accepts are dropped.
 */
export class UsageReporter {
  private readonly usage = new UsageRecorder();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(private readonly s: UsageReporterSettings) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.s.flushIntervalMs);
    this.timer.unref();
  }

  note(keyId: string, orgId: string, at: Date): void {
    this.usage.note({ keyId, orgId, code: 'VALID' }, at.getTime());
    if (this.usage.pending >= this.s.maxPendingKeys && !this.flushing) void this.flush();
  }

  get pendingKeys(): number {
    return this.usage.pending;
  }

  /** Sends what is noted; resolves when done (never rejects: failures go to onError). */
  flush(): Promise<void> {
    this.flushing ??= this.sendAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stops the timer and sends what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async sendAll(): Promise<void> {
    const oldest = this.s.now() - LIMITS.usageReportBehindMs + LIMITS.usageReportAheadMs;
    const batch = this.usage.take();
    const orgOf = new Map(batch.daily.map((d) => [d.keyId, d.orgId]));
    const entries = usageReport(batch).filter((e) => e.lastUsedTime.getTime() >= oldest);
    for (let i = 0; i < entries.length; i += LIMITS.usageReportEntriesMax) {
      const batch = entries.slice(i, i + LIMITS.usageReportEntriesMax);
      try {
        await this.s.send(batch);
      } catch (err) {
        // Kept for the next report: this batch too, unless the server refused it for good.
        const kept = entries.slice(this.s.retryable(err) ? i : i + batch.length);
        for (const e of kept)
          this.usage.note({ keyId: e.keyId, orgId: orgOf.get(e.keyId) ?? '', code: 'VALID' }, e.lastUsedTime.getTime(), e.count);
        this.s.onError(err);
        return;
      }
    }
  }
}
