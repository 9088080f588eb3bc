import { DAY_MS, utcDay } from './utcDays';
import type { Clock, OnDeleted, RetentionStore } from './ports';

export interface RetentionPolicy {
  usageDays: number;
  auditDays: number;
  keyChangeSeconds: number;
  idempotencyWindowSeconds: number;
}

export type RetainedCollection = 'create_requests' | 'key_changes' | 'key_mutations' | 'key_usage_daily' | 'audit_events' | 'rate_counters';

/** No change to a key takes an hour: a claim this old is over even if its change never landed. */
const CLAIMS_FINISHED_AFTER_MS = 3_600_000;
/**
 * Most documents one run removes per collection, so a backlog (the first sweep of an old
 * database) is worked off over several runs instead of one long one.
 */
const DELETES_PER_RUN = 5_000;

/** Rate-limit counters are read only during their window; a minute past its end covers clock skew between instances. */
export const RATE_COUNTERS_KEPT_AFTER_WINDOW_MS = 60_000;

/**
 * One retention sweep: removes what every collection that grows with use keeps past its limit.
 * Each collection is swept even when another fails; the first failure is rethrown at the end.
 */
export function retentionSweepTask(
  store: RetentionStore,
  policy: RetentionPolicy,
  now: Clock,
  onDeleted: (collection: RetainedCollection, count: number) => void,
): () => Promise<void> {
  const before = (at: Date, ms: number) => new Date(at.getTime() - ms);
  const rules: [RetainedCollection, (at: Date, counted: OnDeleted) => Promise<number>][] = [
    // First: a request may hold a sealed copy of a secret, which must go when its window ends.
    [
      'create_requests',
      (at, counted) => store.createRequestsExpired(at, before(at, policy.idempotencyWindowSeconds * 1000), DELETES_PER_RUN, counted),
    ],
    ['key_changes', (at, counted) => store.keyChangesBefore(before(at, policy.keyChangeSeconds * 1000), DELETES_PER_RUN, counted)],
    ['key_mutations', (at, counted) => store.finishedClaims(at, before(at, CLAIMS_FINISHED_AFTER_MS), DELETES_PER_RUN, counted)],
    // A day is kept while any of it is within the retention.
    ['key_usage_daily', (at, counted) => store.usageDaysBefore(utcDay(before(at, policy.usageDays * DAY_MS)), DELETES_PER_RUN, counted)],
    ['audit_events', (at, counted) => store.auditEventsBefore(before(at, policy.auditDays * DAY_MS), DELETES_PER_RUN, counted)],
    [
      'rate_counters',
      (at, counted) => store.rateCountersEndedBefore(before(at, RATE_COUNTERS_KEPT_AFTER_WINDOW_MS), DELETES_PER_RUN, counted),
    ],
  ];
  return async () => {
    const failures: unknown[] = [];
    for (const [collection, sweep] of rules) {
      try {
        await sweep(now(), (count) => onDeleted(collection, count));
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw failures[0];
  };
}
