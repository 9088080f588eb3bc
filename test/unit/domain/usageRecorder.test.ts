import { UsageRecorder, usageFlushTask } from '../../../src/domain/usageRecorder';
import type { UsageCode, UsageEntries } from '../../../src/domain/model';

const t = (iso: string) => new Date(iso);
const ms = (iso: string) => Date.parse(iso);
const use = (keyId: string, code: UsageCode = 'VALID') => ({ keyId, orgId: `org_${keyId}`, code });
/** A batch as maps, so order does not matter: key → last use, and `key|day` → count. */
const lastUses = (b: UsageEntries) => new Map(b.lastUsed.map(({ keyId, at }) => [keyId, at]));
const counts = (b: UsageEntries) => new Map(b.daily.map(({ keyId, day, count }) => [`${keyId}|${day}`, count]));

describe('UsageRecorder.note', () => {
  it('keeps the latest time per key, whatever the order of notes', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('a'), ms('2025-03-01T12:00:00Z'));
    u.note(use('a'), ms('2025-03-01T11:00:00Z'));
    u.note(use('b'), ms('2025-03-01T09:00:00Z'));
    const batch = u.take();
    expect(lastUses(batch)).toEqual(
      new Map([
        ['a', t('2025-03-01T12:00:00Z')],
        ['b', t('2025-03-01T09:00:00Z')],
      ]),
    );
    expect(counts(batch)).toEqual(
      new Map([
        ['a|2025-03-01', 3],
        ['b|2025-03-01', 1],
      ]),
    );
  });

  it('counts per UTC day: notes either side of midnight land on two days', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T23:59:59.999Z'));
    u.note(use('a'), ms('2025-03-02T00:00:00.000Z'));
    u.note(use('a'), ms('2025-03-01T23:00:00.000Z')); // back to the earlier day after the label moved on
    u.note(use('a'), ms('2025-03-02T00:00:00.001Z'));
    expect(counts(u.take())).toEqual(
      new Map([
        ['a|2025-03-01', 2],
        ['a|2025-03-02', 2],
      ]),
    );
  });

  it('uses UTC days, not local ones', () => {
    const u = new UsageRecorder();
    // 23:30 on the 1st at UTC-5 is 04:30 UTC on the 2nd.
    u.note(use('a'), ms('2025-03-01T23:30:00-05:00'));
    expect([...counts(u.take()).keys()]).toEqual(['a|2025-03-02']);
  });

  it('handles leap days and year ends', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2024-02-29T12:00:00Z'));
    u.note(use('a'), ms('2024-12-31T23:59:59Z'));
    u.note(use('a'), ms('2025-01-01T00:00:00Z'));
    expect([...counts(u.take()).keys()].sort()).toEqual(['a|2024-02-29', 'a|2024-12-31', 'a|2025-01-01']);
  });

  it('counts every result by code, and only VALID uses move the last use', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('a', 'RATE_LIMITED'), ms('2025-03-01T11:00:00Z'));
    u.note(use('a', 'RATE_LIMITED'), ms('2025-03-01T11:30:00Z'));
    u.note(use('b', 'REVOKED'), ms('2025-03-01T12:00:00Z'), 4);
    expect(u.pending).toBe(2);
    const batch = u.take();
    expect(lastUses(batch)).toEqual(new Map([['a', t('2025-03-01T10:00:00Z')]]));
    expect(batch.daily.map((d) => [d.keyId, d.orgId, d.day, d.code, d.count])).toEqual([
      ['a', 'org_a', '2025-03-01', 'VALID', 1],
      ['a', 'org_a', '2025-03-01', 'RATE_LIMITED', 2],
      ['b', 'org_b', '2025-03-01', 'REVOKED', 4],
    ]);
  });

  it('keeps one count per key, day and code, however the notes of several keys interleave', () => {
    const u = new UsageRecorder();
    for (const [key, code, at] of [
      ['a', 'VALID', '2025-03-01T10:00:00Z'],
      ['b', 'VALID', '2025-03-01T10:00:01Z'],
      ['a', 'REVOKED', '2025-03-01T10:00:02Z'],
      ['b', 'VALID', '2025-03-02T00:00:00Z'],
      ['a', 'VALID', '2025-03-01T10:00:03Z'],
      ['b', 'VALID', '2025-03-01T23:00:00Z'],
    ] as const)
      u.note(use(key, code), ms(at));
    const daily = u.take().daily.map((d) => `${d.keyId} ${d.day} ${d.code} ${d.count}`);
    expect(daily.sort()).toEqual(['a 2025-03-01 REVOKED 1', 'a 2025-03-01 VALID 2', 'b 2025-03-01 VALID 2', 'b 2025-03-02 VALID 1']);
  });

  it('pending counts distinct keys', () => {
    const u = new UsageRecorder();
    expect(u.pending).toBe(0);
    u.note(use('a'), ms('2025-03-01T00:00:00Z'));
    u.note(use('a'), ms('2025-03-02T00:00:00Z'));
    u.note(use('b'), ms('2025-03-01T00:00:00Z'));
    expect(u.pending).toBe(2);
  });
});

describe('UsageRecorder.take / restore', () => {
  it('take hands over the batch and starts an empty one', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T00:00:00Z'));
    const first = u.take();
    expect(first.lastUsed).toHaveLength(1);
    expect(u.pending).toBe(0);
    const second = u.take();
    expect(second).toEqual({ lastUsed: [], daily: [] });
    // Later notes do not leak into a batch already handed over.
    u.note(use('a'), ms('2025-03-01T00:00:01Z'));
    u.note(use('b'), ms('2025-03-01T00:00:00Z'));
    expect(first).toEqual({
      lastUsed: [{ keyId: 'a', at: t('2025-03-01T00:00:00Z') }],
      daily: [{ keyId: 'a', orgId: 'org_a', day: '2025-03-01', code: 'VALID', count: 1 }],
    });
  });

  it('restore merges a failed batch back: latest time wins, counts add up', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('a'), ms('2025-03-01T10:05:00Z'));
    u.note(use('b'), ms('2025-03-01T12:00:00Z'));
    const failed = u.take();

    u.note(use('a'), ms('2025-03-01T11:00:00Z')); // newer than the failed batch's a
    u.note(use('b'), ms('2025-03-01T11:00:00Z')); // older than the failed batch's b
    u.note(use('c'), ms('2025-03-02T01:00:00Z'));
    u.restore(failed);

    const merged = u.take();
    expect(lastUses(merged)).toEqual(
      new Map([
        ['a', t('2025-03-01T11:00:00Z')],
        ['b', t('2025-03-01T12:00:00Z')],
        ['c', t('2025-03-02T01:00:00Z')],
      ]),
    );
    expect(Object.fromEntries(counts(merged))).toEqual({
      'a|2025-03-01': 3,
      'b|2025-03-01': 2,
      'c|2025-03-02': 1,
    });
  });

  it('restore into an empty recorder reproduces the batch', () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('a'), ms('2025-03-02T10:00:00Z'));
    const batch = u.take();
    const copy = structuredClone(batch);
    u.restore(batch);
    expect(u.take()).toEqual(copy);
  });
});

describe('usageFlushTask', () => {
  const entriesOf = (u: UsageRecorder) => {
    const b = u.take();
    u.restore(b);
    return b;
  };

  it('hands the whole batch to storage and keeps nothing once it is written', async () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('b'), ms('2025-03-01T11:00:00Z'));
    const expected = entriesOf(u);
    const written: UsageEntries[] = [];
    await usageFlushTask({ write: async (e) => (written.push(e), { ok: true }) }, u)();
    expect(written).toEqual([expected]);
    expect(u.take()).toEqual({ lastUsed: [], daily: [] });
  });

  it('keeps only what storage reports unwritten, so written counts are not added twice', async () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    u.note(use('b'), ms('2025-03-01T11:00:00Z'));
    const unwritten: UsageEntries = { lastUsed: [], daily: [{ keyId: 'b', orgId: 'org_b', day: '2025-03-01', code: 'VALID', count: 1 }] };
    const failing = usageFlushTask({ write: async () => ({ ok: false, unwritten, error: new Error('connection reset') }) }, u);
    await expect(failing()).rejects.toThrow('connection reset');
    expect(u.take()).toEqual(unwritten);
  });

  it('keeps the whole batch when the write fails otherwise', async () => {
    const u = new UsageRecorder();
    u.note(use('a'), ms('2025-03-01T10:00:00Z'));
    const expected = entriesOf(u);
    const failing = usageFlushTask(
      {
        write: async () => {
          throw new Error('not primary');
        },
      },
      u,
    );
    await expect(failing()).rejects.toThrow('not primary');
    expect(u.take()).toEqual(expected);
  });
});
