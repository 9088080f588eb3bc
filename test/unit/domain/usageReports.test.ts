import { DomainError } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import { UsageRecorder } from '../../../src/domain/usageRecorder';
import { UsageReports } from '../../../src/domain/usageReports';
import { apiKeyContext, contextOf, userContext } from './contexts';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const service = contextOf({ kind: 'service', id: 'service:1' }, '');

function setup(stored: string[]) {
  const usage = new UsageRecorder();
  const lookups: string[][] = [];
  const reports = new UsageReports({
    keys: {
      organizationsOf: async (ids) => {
        lookups.push([...ids]);
        return new Map(ids.filter((id) => stored.includes(id)).map((id) => [id, `org_of_${id}`]));
      },
    },
    usage,
    now: () => NOW,
  });
  return { reports, usage, lookups };
}

const violations = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof DomainError)) throw new Error(`expected a DomainError, got ${String(err)}`);
  return { reason: err.reason, fields: err.fieldViolations.map((v) => `${v.field}:${v.reason}`) };
};

describe('UsageReports', () => {
  const key = newId('key');
  const at = new Date(NOW.getTime() - 60_000);

  it('notes reported uses of stored keys as VALID uses in their organization, in the recorder VerifyKey uses, one lookup per report', async () => {
    const other = newId('key');
    const { reports, usage, lookups } = setup([key, other]);
    await reports.report(service, [
      { keyId: key, count: 3, lastUsedTime: at },
      { keyId: other, count: 1, lastUsedTime: at },
      { keyId: key, count: 2, lastUsedTime: new Date(at.getTime() - 1_000) },
    ]);
    expect(lookups).toEqual([[key, other]]);
    expect(usage.take()).toEqual({
      lastUsed: [
        { keyId: key, at },
        { keyId: other, at },
      ],
      daily: [
        { keyId: key, orgId: `org_of_${key}`, day: '2025-06-01', code: 'VALID', count: 5 },
        { keyId: other, orgId: `org_of_${other}`, day: '2025-06-01', code: 'VALID', count: 1 },
      ],
    });
  });

  it('ignores ids that are not stored keys', async () => {
    const { reports, usage } = setup([key]);
    await reports.report(service, [
      { keyId: newId('key'), count: 1, lastUsedTime: at },
      { keyId: key, count: 1, lastUsedTime: at },
    ]);
    expect(usage.take().lastUsed.map((l) => l.keyId)).toEqual([key]);
  });

  it('counts uses on the UTC day of their time', async () => {
    const { reports, usage } = setup([key]);
    await reports.report(service, [{ keyId: key, count: 4, lastUsedTime: new Date('2025-05-31T23:59:59.999Z') }]);
    expect(usage.take().daily).toEqual([{ keyId: key, orgId: `org_of_${key}`, day: '2025-05-31', code: 'VALID', count: 4 }]);
  });

  it('is for service credentials only', async () => {
    const { reports, usage, lookups } = setup([key]);
    for (const ctx of [userContext('org_x'), apiKeyContext('org_x')]) {
      expect(await violations(reports.report(ctx, [{ keyId: key, count: 1, lastUsedTime: at }]))).toEqual({
        reason: 'PERMISSION_DENIED',
        fields: [],
      });
    }
    expect(lookups).toEqual([]);
    expect(usage.pending).toBe(0);
  });

  it('refuses the whole report, naming every bad field, before any lookup', async () => {
    const { reports, usage, lookups } = setup([key]);
    const refused = await violations(
      reports.report(service, [
        { keyId: key, count: 1, lastUsedTime: at },
        { keyId: 'org_01jabcdefghjkmnpqrstvwxyz0', count: 1, lastUsedTime: at },
        { keyId: key, count: 0, lastUsedTime: at },
        { keyId: key, count: 1.5, lastUsedTime: at },
        { keyId: key, count: 1 },
        { keyId: key, count: 1, lastUsedTime: new Date(NOW.getTime() + 60_001) },
        { keyId: key, count: 1, lastUsedTime: new Date(NOW.getTime() - 86_400_001) },
        { keyId: key, count: 1, lastUsedTime: new Date(NaN) },
      ]),
    );
    expect(refused.fields).toEqual([
      'entries[1].key_id:INVALID_ID',
      'entries[2].count:INVALID_ARGUMENT',
      'entries[3].count:INVALID_ARGUMENT',
      'entries[4].last_used_time:INVALID_TIMESTAMP',
      'entries[5].last_used_time:INVALID_TIMESTAMP',
      'entries[6].last_used_time:INVALID_TIMESTAMP',
      'entries[7].last_used_time:INVALID_TIMESTAMP',
    ]);
    const tooMany = Array.from({ length: 1_001 }, () => ({ keyId: key, count: 1, lastUsedTime: at }));
    expect(await violations(reports.report(service, tooMany))).toEqual({
      reason: 'INVALID_ARGUMENT',
      fields: ['entries:INVALID_ARGUMENT'],
    });
    expect(lookups).toEqual([]);
    expect(usage.pending).toBe(0);
  });

  it('accepts the edges: a minute ahead, a day behind, an empty report (no lookup)', async () => {
    const { reports, usage, lookups } = setup([key]);
    await reports.report(service, []);
    expect(lookups).toEqual([]);
    await reports.report(service, [
      { keyId: key, count: 1, lastUsedTime: new Date(NOW.getTime() + 60_000) },
      { keyId: key, count: 1, lastUsedTime: new Date(NOW.getTime() - 86_400_000) },
    ]);
    expect(usage.take().daily.reduce((n, d) => n + d.count, 0)).toBe(2);
  });
});
