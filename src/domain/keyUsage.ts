import { DAY_MS, utcDay } from './utcDays';
import type { AuditLog } from './audit';
import { authorize } from './authorization';
import { keyNotFound } from './errors';
import type { DailyUsage } from './model';
import type { Clock, KeyStore, UsageStore } from './ports';
import type { CallContext } from './principal';
import { validateUsageQuery } from './validation';

export interface KeyUsageInput {
  /** '' for every key of the organization. */
  keyId: string;
  startTime?: Date;
  endTime?: Date;
}

export interface KeyUsageDeps {
  keys: Pick<KeyStore, 'findInOrg'>;
  usage: Pick<UsageStore, 'dailyUsage'>;
  audit: AuditLog;
  now: Clock;
}

/**
 * GetKeyUsage: verifications per UTC day by result code, of one key or of the whole organization
 * (keys deleted since included). Who may read it is who may read keys: one key as GetKey (any
 * reader of its organization; another organization's key is NOT_FOUND), the organization as
 * ListKeys, which shows every key of it to any reader, API keys included, so the sum of their
 * counts shows an API key nothing it could not read key by key.
 */
export class KeyUsageReader {
  constructor(private readonly d: KeyUsageDeps) {}

  get(ctx: CallContext, input: KeyUsageInput): Promise<DailyUsage[]> {
    return this.d.audit.around(ctx, 'key.usage', input.keyId || null, false, async () => {
      authorize(ctx, 'read');
      const { keyId, first, last } = validateUsageQuery(input, this.d.now());
      if (keyId && !(await this.d.keys.findInOrg(ctx.orgId, keyId))) throw keyNotFound(keyId);
      return this.d.usage.dailyUsage(ctx.orgId, keyId, { first, last });
    });
  }
}

/** Old counts one run looks at, at most (each names a key whose old counts are all attributed). */
const ATTRIBUTED_PER_RUN = 5_000;

/**
 * Gives counts written before usage named its organization their key's organization, so that
 * organization-wide reads find them. Only days before yesterday: an instance of the previous
 * version, during an upgrade, may still add to today's and (reported uses) yesterday's, and two
 * writers of one document must never meet. Runs until none is left; then each run is one query.
 */
export function oldUsageAttributionTask(store: Pick<UsageStore, 'attributeOldCounts'>, now: Clock): () => Promise<void> {
  return async () => {
    const yesterday = utcDay(now().getTime() - DAY_MS);
    await store.attributeOldCounts(yesterday, ATTRIBUTED_PER_RUN);
  };
}
