import { Writable } from 'node:stream';
import { invalidationTask } from '../../../src/domain/freshness';
import { KeyCache } from '../../../src/domain/keyCache';
import { generateSecret, hashSecret } from '../../../src/domain/keyFormat';
import { UsageRecorder } from '../../../src/domain/usageRecorder';
import { Verifier } from '../../../src/domain/verification';
import { createLogger } from '../../../src/logging/logger';
import type { KeyChange, StoredKey } from '../../../src/domain/model';
import { fakeKey } from './fakeKey';

const BOUND_MS = 1_000;
const START = Date.parse('2025-06-01T12:00:00.000Z');

/** A change log in memory, as ChangeLog.since answers it; it can be made to fail. */
class FakeChangeLog {
  readonly entries: KeyChange[] = [];
  readonly queries: Date[] = [];
  failing = false;

  since = async (since: Date): Promise<KeyChange[]> => {
    this.queries.push(since);
    if (this.failing) throw new Error('storage down');
    return this.entries.filter((e) => e.at.getTime() >= since.getTime());
  };

  log(hash: string, etag: string, at: number, kind: KeyChange['kind'] = 'changed'): void {
    this.entries.push({ _id: `chg_${this.entries.length}`, key_id: 'key_x', org_id: 'org_x', hash, etag, kind, at: new Date(at) });
  }
}

function setup() {
  let clock = START;
  const docs = new Map<string, StoredKey>();
  const reads: string[] = [];
  const verifier = new Verifier({
    keyPrefix: 'sk',
    findByHash: async (h) => {
      reads.push(h);
      return docs.get(h) ?? null;
    },
    nowMs: () => clock,
    cache: new KeyCache({ maxEntries: 100, negativeMaxEntries: 100, ttlMs: 60_000, negativeTtlMs: 10_000 }),
    usage: new UsageRecorder(),
    rateLimiter: {
      take: () => {
        throw new Error('the keys here have no rate limit');
      },
    },
    revocationBoundMs: BOUND_MS,
    announcementTtlMs: 60_000,
    maxConcurrentReads: 1_000,
  });
  const logs: Array<{ level: number; msg: string }> = [];
  const logger = createLogger('info', {
    destination: new Writable({
      write(chunk, _e, cb) {
        logs.push(JSON.parse(String(chunk)) as { level: number; msg: string });
        cb();
      },
    }),
  });
  const changeLog = new FakeChangeLog();
  const poll = invalidationTask({ changeLog, verifier, now: () => new Date(clock), revocationBoundMs: BOUND_MS, logger });
  const put = (secret: string, over: Partial<StoredKey> = {}) =>
    docs.set(hashSecret(secret), fakeKey({ hash: hashSecret(secret), ...over }));
  return {
    verifier,
    changeLog,
    poll,
    put,
    reads,
    logs,
    advance: (ms: number) => (clock += ms),
    now: () => clock,
  };
}

describe('invalidationTask: the change log applied to the Verify cache', () => {
  it('reads entries since the last successful poll minus the skew margin, and evicts what changed', async () => {
    const t = setup();
    const secret = generateSecret('sk', 'live');
    t.put(secret, { etag: 'e1' });
    expect((await t.verifier.verify(secret, [])).code).toBe('VALID');

    t.advance(500);
    t.put(secret, { etag: 'e2', status: 'revoked' });
    t.changeLog.log(hashSecret(secret), 'e2', t.now());
    await t.poll();
    expect(t.changeLog.queries[0].getTime()).toBe(START - 2_000);
    expect((await t.verifier.verify(secret, [])).code).toBe('REVOKED');
    expect(t.reads).toHaveLength(2);

    // The next poll re-reads the margin and sees the same entry: the current entry stays.
    t.advance(500);
    await t.poll();
    expect(t.changeLog.queries[1].getTime()).toBe(START + 500 - 2_000);
    expect((await t.verifier.verify(secret, [])).code).toBe('REVOKED');
    expect(t.reads).toHaveLength(2);
  });

  it('only the latest logged version of a key is applied', async () => {
    const t = setup();
    const secret = generateSecret('sk', 'live');
    t.put(secret, { etag: 'e3' });
    expect((await t.verifier.verify(secret, [])).code).toBe('VALID');
    // Listed newest first: applying e2 after e3 would evict the current entry.
    t.changeLog.log(hashSecret(secret), 'e3', t.now());
    t.changeLog.log(hashSecret(secret), 'e2', t.now() - 100);
    await t.poll();
    expect((await t.verifier.verify(secret, [])).code).toBe('VALID');
    expect(t.reads).toHaveLength(1);
  });

  it('a failed poll does not confirm the cache: past the bound cached keys are re-read, and the next success re-reads the log from the last one', async () => {
    const t = setup();
    const secret = generateSecret('sk', 'live');
    t.put(secret);
    await t.poll();
    await t.verifier.verify(secret, []);
    t.changeLog.failing = true;
    for (let i = 0; i < 3; i++) {
      t.advance(500);
      await expect(t.poll()).rejects.toThrow('storage down');
    }
    expect(t.verifier.lagMs()).toBe(1_500);
    expect((await t.verifier.verify(secret, [])).code).toBe('VALID');
    expect(t.reads).toHaveLength(2); // re-read: nothing confirmed the entry within the bound

    t.changeLog.failing = false;
    await t.poll();
    expect(t.changeLog.queries.at(-1)!.getTime()).toBe(START - 2_000);
    expect(t.verifier.lagMs()).toBe(0);
  });

  it('tells how old the key state behind each answer is: a cached entry is current as of its read or the last poll, whichever is later; a read as of itself', async () => {
    const t = setup();
    const secret = generateSecret('sk', 'live');
    t.put(secret);
    expect((await t.verifier.verify(secret, [])).stateAgeMs).toBe(0); // read now
    t.advance(300);
    expect((await t.verifier.verify(secret, [])).stateAgeMs).toBe(300); // the read, 300 ms ago; no poll since
    await t.poll();
    t.advance(200);
    expect((await t.verifier.verify(secret, [])).stateAgeMs).toBe(200); // the poll, 200 ms ago
    t.advance(900);
    // Past the bound without a poll: re-read, current as of that read, revoked or not.
    t.put(secret, { status: 'revoked' });
    expect(await t.verifier.verify(secret, [])).toMatchObject({ code: 'REVOKED', stateAgeMs: 0 });
    expect((await t.verifier.verify(generateSecret('sk', 'live'), [])).stateAgeMs).toBeUndefined(); // no key, no state
  });

  it('logs once when the log falls behind the bound, and once when it is read again', async () => {
    const t = setup();
    t.changeLog.failing = true;
    for (let i = 0; i < 4; i++) {
      t.advance(600);
      await t.poll().catch(() => undefined);
    }
    t.changeLog.failing = false;
    await t.poll();
    await t.poll();
    expect(t.logs.map((l) => l.msg)).toEqual([
      'key change log not read within the revocation bound: cached keys are re-read from storage, and fail closed while it is down',
      'key change log read again: cached keys are trusted again',
    ]);
  });
});
