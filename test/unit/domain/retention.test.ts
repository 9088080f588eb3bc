import { retentionSweepTask, type RetainedCollection } from '../../../src/domain/retention';
import type { OnDeleted } from '../../../src/domain/ports';

const now = new Date('2026-03-01T12:00:00.000Z');
const policy = { usageDays: 400, auditDays: 90, keyChangeSeconds: 3600, idempotencyWindowSeconds: 86_400 };

/** A repository that records the limits each rule was given and reports `n` deletions per rule. */
function fakeRepo(fail: Partial<Record<string, Error>> = {}) {
  const calls: Record<string, unknown[]> = {};
  const rule =
    (name: string, n: number) =>
    async (...args: unknown[]) => {
      calls[name] = args.slice(0, -2);
      if (fail[name]) throw fail[name];
      (args[args.length - 1] as OnDeleted)(n);
      return n;
    };
  return {
    calls,
    repo: {
      createRequestsExpired: rule('createRequestsExpired', 1),
      keyChangesBefore: rule('keyChangesBefore', 2),
      finishedClaims: rule('finishedClaims', 3),
      usageDaysBefore: rule('usageDaysBefore', 4),
      auditEventsBefore: rule('auditEventsBefore', 5),
      rateCountersEndedBefore: rule('rateCountersEndedBefore', 6),
    },
  };
}

describe('retentionSweepTask', () => {
  it('gives each rule its limit and counts what each removed', async () => {
    const { calls, repo } = fakeRepo();
    const deleted: [RetainedCollection, number][] = [];
    await retentionSweepTask(
      repo,
      policy,
      () => now,
      (c, n) => deleted.push([c, n]),
    )();
    expect(calls).toEqual({
      createRequestsExpired: [now, new Date('2026-02-28T12:00:00.000Z')],
      keyChangesBefore: [new Date('2026-03-01T11:00:00.000Z')],
      finishedClaims: [now, new Date('2026-03-01T11:00:00.000Z')],
      // 400 days before 2026-03-01T12:00 is 2025-01-25T12:00: that day is still partly kept.
      usageDaysBefore: ['2025-01-25'],
      auditEventsBefore: [new Date('2025-12-01T12:00:00.000Z')],
      // A minute past a window's end, for clock skew between instances.
      rateCountersEndedBefore: [new Date('2026-03-01T11:59:00.000Z')],
    });
    expect(deleted).toEqual([
      ['create_requests', 1],
      ['key_changes', 2],
      ['key_mutations', 3],
      ['key_usage_daily', 4],
      ['audit_events', 5],
      ['rate_counters', 6],
    ]);
  });

  it('sweeps every collection when one fails, then reports the failure', async () => {
    const boom = new Error('create_requests unreachable');
    const { calls, repo } = fakeRepo({ createRequestsExpired: boom });
    const deleted: RetainedCollection[] = [];
    await expect(
      retentionSweepTask(
        repo,
        policy,
        () => now,
        (c) => deleted.push(c),
      )(),
    ).rejects.toBe(boom);
    expect(Object.keys(calls)).toHaveLength(6);
    expect(deleted).toEqual(['key_changes', 'key_mutations', 'key_usage_daily', 'audit_events', 'rate_counters']);
  });
});
