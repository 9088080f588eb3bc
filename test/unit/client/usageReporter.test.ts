import { usageReport, UsageReporter } from '../../../src/client/usageReporter';
import type { KeyUsage } from '../../../src/gen/apikeys/v1/verify_service';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');

/** Stands in for a gRPC error: only its code matters here. */
class RpcFailure extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

function setup(send: (entries: KeyUsage[]) => Promise<void> = async () => undefined, maxPendingKeys = 100) {
  const sent: KeyUsage[][] = [];
  const errors: unknown[] = [];
  const reporter = new UsageReporter({
    flushIntervalMs: 10_000,
    maxPendingKeys,
    send: async (entries) => {
      sent.push(entries);
      await send(entries);
    },
    retryable: (err) => (err as RpcFailure).code !== 'FINAL',
    onError: (err) => errors.push(err),
    now: () => NOW,
  });
  return { reporter, sent, errors };
}

describe('usageReport', () => {
  it('makes one entry per key and UTC day, the last use on its day, earlier days stamped with their last millisecond', () => {
    const lastUse = new Date('2025-06-01T00:00:05.000Z');
    expect(
      usageReport({
        lastUsed: [{ keyId: 'key_a', at: lastUse }],
        daily: [
          { keyId: 'key_a', orgId: 'org_a', day: '2025-05-31', code: 'VALID', count: 3 },
          { keyId: 'key_a', orgId: 'org_a', day: '2025-06-01', code: 'VALID', count: 2 },
        ],
      }),
    ).toEqual([
      { keyId: 'key_a', count: 3, lastUsedTime: new Date('2025-05-31T23:59:59.999Z') },
      { keyId: 'key_a', count: 2, lastUsedTime: lastUse },
    ]);
  });
});

describe('UsageReporter', () => {
  it('reports what was noted, and nothing when nothing was', async () => {
    const { reporter, sent } = setup();
    await reporter.flush();
    expect(sent).toEqual([]);
    reporter.note('key_a', 'org_a', new Date(NOW - 2_000));
    reporter.note('key_a', 'org_a', new Date(NOW - 1_000));
    reporter.note('key_b', 'org_a', new Date(NOW - 1_500));
    await reporter.flush();
    expect(sent).toEqual([
      [
        { keyId: 'key_a', count: 2, lastUsedTime: new Date(NOW - 1_000) },
        { keyId: 'key_b', count: 1, lastUsedTime: new Date(NOW - 1_500) },
      ],
    ]);
    expect(reporter.pendingKeys).toBe(0);
  });

  it('sends at most 1000 entries per report', async () => {
    const { reporter, sent } = setup(async () => undefined, 10_000);
    for (let i = 0; i < 2_500; i++) reporter.note(`key_${i}`, 'org_a', new Date(NOW));
    await reporter.flush();
    expect(sent.map((b) => b.length)).toEqual([1_000, 1_000, 500]);
  });

  it('reports early once enough distinct keys are pending', async () => {
    const { reporter, sent } = setup(async () => undefined, 3);
    reporter.note('key_a', 'org_a', new Date(NOW));
    reporter.note('key_b', 'org_a', new Date(NOW));
    expect(sent).toHaveLength(0);
    reporter.note('key_c', 'org_a', new Date(NOW));
    await reporter.flush();
    expect(sent).toHaveLength(1);
  });

  it('keeps what a failed report carried for the next one, unless the server refused it for good', async () => {
    let failWith: RpcFailure | undefined = new RpcFailure('UNAVAILABLE');
    const { reporter, sent, errors } = setup(async () => {
      if (failWith) throw failWith;
    });
    reporter.note('key_a', 'org_a', new Date(NOW));
    await reporter.flush();
    expect(errors).toEqual([new RpcFailure('UNAVAILABLE')]);
    reporter.note('key_a', 'org_a', new Date(NOW));
    failWith = undefined;
    await reporter.flush();
    expect(sent.at(-1)).toEqual([{ keyId: 'key_a', count: 2, lastUsedTime: new Date(NOW) }]);

    failWith = new RpcFailure('FINAL');
    reporter.note('key_b', 'org_a', new Date(NOW));
    await reporter.flush();
    failWith = undefined;
    await reporter.flush();
    expect(sent.at(-1)).toEqual([{ keyId: 'key_b', count: 1, lastUsedTime: new Date(NOW) }]); // the refused attempt
    expect(reporter.pendingKeys).toBe(0);
  });

  it('drops uses older than the server accepts rather than have a whole report refused', async () => {
    const { reporter, sent } = setup();
    reporter.note('key_old', 'org_a', new Date(NOW - 86_400_000));
    reporter.note('key_new', 'org_a', new Date(NOW - 1_000));
    await reporter.flush();
    expect(sent).toEqual([[{ keyId: 'key_new', count: 1, lastUsedTime: new Date(NOW - 1_000) }]]);
  });

  it('sends what is left on close', async () => {
    const { reporter, sent } = setup();
    reporter.start();
    reporter.note('key_a', 'org_a', new Date(NOW));
    await reporter.close();
    expect(sent).toHaveLength(1);
  });
});
