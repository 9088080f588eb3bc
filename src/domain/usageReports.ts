import { authorizeVerify } from './authorization';
import type { CallContext } from './principal';
import type { Clock, KeyDirectory } from './ports';
import type { UsageRecorder } from './usageRecorder';
import { validateUsageReport, type ReportedUse } from './validation';

export interface UsageReportsDeps {
  keys: KeyDirectory;
  usage: Pick<UsageRecorder, 'note'>;
  now: Clock;
}

/**
 * ReportUsage: verifications callers answered from their own caches, noted in the recorder
 * VerifyKey notes its own in, so the same flush writes last_used_at and the daily counts.
 *
 * A service credential acts on no organization, so any key's usage may be reported; what it
 * must not do is make storage grow: usage rows are written only for ids that are stored keys
 * (one query per report), so a report of made-up ids writes nothing, and the rows a caller can
 * cause stay bounded by the keys that exist (and, per key, by one row per day and instance).
 */
export class UsageReports {
  constructor(private readonly d: UsageReportsDeps) {}

  async report(ctx: CallContext, entries: ReportedUse[]): Promise<void> {
    authorizeVerify(ctx);
    const valid = validateUsageReport(entries, this.d.now());
    if (valid.length === 0) return;
    const orgs = await this.d.keys.organizationsOf([...new Set(valid.map((e) => e.keyId))]);
    for (const e of valid) {
      const orgId = orgs.get(e.keyId);
      // Clients report the uses they answered VALID from their caches (KeyVerifier counts no other).
      if (orgId) this.d.usage.note({ keyId: e.keyId, orgId, code: 'VALID' }, e.lastUsedTime.getTime(), e.count);
    }
  }
}
