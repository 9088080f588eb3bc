import { UsageRecorder } from '../../../src/domain/usageRecorder';

const t = (iso: string) => new Date(iso);

describe('UsageRecorder.note', () => {
  it('keeps the latest time per key, whatever the order of notes', () => {
    const u = new UsageRecorder();
    u.note('a', t('2025-03-01T10:00:00Z'));
    u.note('a', t('2025-03-01T12:00:00Z'));
    u.note('a', t('2025-03-01T11:00:00Z'));
    u.note('b', t('2025-03-01T09:00:00Z'));
    const batch = u.take();
    expect(batch.lastUsed).toEqual(
      new Map([
        ['a', t('2025-03-01T12:00:00Z')],
        ['b', t('2025-03-01T09:00:00Z')],
      ]),
    );
    expect(batch.daily).toEqual(
      new Map([
        ['a|2025-03-01', 3],
        ['b|2025-03-01', 1],
      ]),
    );
  });

  it('counts per UTC day: notes either side of midnight land on two days', () => {
    const u = new UsageRecorder();
    u.note('a', t('2025-03-01T23:59:59.999Z'));
    u.note('a', t('2025-03-02T00:00:00.000Z'));
    u.note('a', t('2025-03-01T23:00:00.000Z')); // back to the earlier day after the label moved on
    u.note('a', t('2025-03-02T00:00:00.001Z'));
    expect(u.take().daily).toEqual(
      new Map([
        ['a|2025-03-01', 2],
        ['a|2025-03-02', 2],
      ]),
    );
  });

  it('uses UTC days, not local ones', () => {
    const u = new UsageRecorder();
    // 23:30 on the 1st at UTC-5 is 04:30 UTC on the 2nd.
    u.note('a', t('2025-03-01T23:30:00-05:00'));
    expect([...u.take().daily.keys()]).toEqual(['a|2025-03-02']);
  });

  it('handles leap days and year ends', () => {
    const u = new UsageRecorder();
    u.note('a', t('2024-02-29T12:00:00Z'));
    u.note('a', t('2024-12-31T23:59:59Z'));
    u.note('a', t('2025-01-01T00:00:00Z'));
    expect([...u.take().daily.keys()].sort()).toEqual(['a|2024-02-29', 'a|2024-12-31', 'a|2025-01-01']);
  });

  it('pending counts distinct keys', () => {
    const u = new UsageRecorder();
    expect(u.pending).toBe(0);
    u.note('a', t('2025-03-01T00:00:00Z'));
    u.note('a', t('2025-03-02T00:00:00Z'));
    u.note('b', t('2025-03-01T00:00:00Z'));
    expect(u.pending).toBe(2);
  });
});

describe('UsageRecorder.take / restore', () => {
  it('take hands over the batch and starts an empty one', () => {
    const u = new UsageRecorder();
    u.note('a', t('2025-03-01T00:00:00Z'));
    const first = u.take();
    expect(first.lastUsed.size).toBe(1);
    expect(u.pending).toBe(0);
    const second = u.take();
    expect(second.lastUsed.size).toBe(0);
    expect(second.daily.size).toBe(0);
    // Later notes do not leak into a batch already handed over.
    u.note('b', t('2025-03-01T00:00:00Z'));
    expect(first.lastUsed.has('b')).toBe(false);
  });

  it('restore merges a failed batch back: latest time wins, counts add up', () => {
    const u = new UsageRecorder();
    u.note('a', t('2025-03-01T10:00:00Z'));
    u.note('a', t('2025-03-01T10:05:00Z'));
    u.note('b', t('2025-03-01T12:00:00Z'));
    const failed = u.take();

    u.note('a', t('2025-03-01T11:00:00Z')); // newer than the failed batch's a
    u.note('b', t('2025-03-01T11:00:00Z')); // older than the failed batch's b
    u.note('c', t('2025-03-02T01:00:00Z'));
    u.restore(failed);

    const merged = u.take();
    expect(merged.lastUsed).toEqual(
      new Map([
        ['a', t('2025-03-01T11:00:00Z')],
        ['b', t('2025-03-01T12:00:00Z')],
        ['c', t('2025-03-02T01:00:00Z')],
      ]),
    );
    expect(Object.fromEntries(merged.daily)).toEqual({
      'a|2025-03-01': 3,
      'b|2025-03-01': 2,
      'c|2025-03-02': 1,
    });
  });

  it('restore into an empty recorder reproduces the batch', () => {
    const u = new UsageRecorder();
    u.note('a', t('2025-03-01T10:00:00Z'));
    u.note('a', t('2025-03-02T10:00:00Z'));
    const batch = u.take();
    const copy = { lastUsed: new Map(batch.lastUsed), daily: new Map(batch.daily) };
    u.restore(batch);
    expect(u.take()).toEqual(copy);
  });
});
