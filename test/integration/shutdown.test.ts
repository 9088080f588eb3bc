import { status, type ServiceError } from '@grpc/grpc-js';
import { bearer, connectClients, type ApiKeysClients } from '../../src/client/promiseClient';
import { mintUserToken } from '../../src/dev/tokens';
import { newId } from '../../src/domain/ids';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { testDb, type TestDatabase } from '../support/database';
import { startServiceProcess, type ServiceProcess } from '../support/serviceProcess';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const LOAD_BEFORE_SIGNAL_MS = 1_500;
const WORKERS = 16;
const SHUTDOWN_GRACE_MS = 10_000;

interface CallRecord {
  kind: 'verify' | 'create' | 'list';
  started: number;
  ended: number;
  /** -1: the call failed without a gRPC status. */
  code: status | -1;
  keyId?: string;
}

/**
 * The production entry point (src/main.ts) in its own process, against the suite's database:
 * SIGTERM during load lets the calls in flight finish, writes the pending usage, exits 0.
 */
describe('SIGTERM during load', () => {
  let db: TestDatabase;
  let svc: ServiceProcess;

  beforeAll(async () => {
    db = await testDb('shutdown');
    svc = await startServiceProcess({
      MONGODB_URI: db.uri,
      MONGODB_DATABASE: db.dbName,
      // Only the shutdown flush can write usage during this test.
      USAGE_FLUSH_INTERVAL_MS: '3600000',
      SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
      // The load creates keys in one organization for as long as it runs: a faster server makes more
      // than the default cap of 100 live keys, and this test is about shutdown, not the cap.
      ORG_KEY_LIMIT: '100000',
    });
  }, 60_000);

  afterAll(async () => {
    svc?.kill();
    await db?.drop();
    await db?.close();
  });

  it('completes the calls in flight, flushes usage to MongoDB and exits 0', async () => {
    const { child, exited, logs } = svc;
    const clients: ApiKeysClients = connectClients(`127.0.0.1:${svc.port}`);
    const admin = bearer(await mintUserToken(svc.jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
    const service = bearer(svc.verifyToken);

    const keys = await Promise.all(
      Array.from({ length: 20 }, (_, i) => clients.keys.createKey({ name: `load ${i}`, scopes: ['read'] }, admin)),
    );
    const unused = await clients.keys.createKey({ name: 'never verified', scopes: ['read'] }, admin);

    const records: CallRecord[] = [];
    let childGone = false;
    void exited.then(() => (childGone = true));
    const once = async (i: number): Promise<CallRecord> => {
      const started = Date.now();
      const r = Math.random();
      const kind: CallRecord['kind'] = r < 0.8 ? 'verify' : r < 0.9 ? 'create' : 'list';
      try {
        if (kind === 'verify') {
          const res = await clients.verify.verifyKey({ key: keys[i % keys.length].secret }, service);
          expect(res.code).toBe(VerifyCode.VERIFY_CODE_VALID);
          return { kind, started, ended: Date.now(), code: status.OK, keyId: res.keyId };
        }
        if (kind === 'create') await clients.keys.createKey({ name: 'during load', scopes: ['read'] }, admin);
        else await clients.keys.listKeys({ pageSize: 5 }, admin);
        return { kind, started, ended: Date.now(), code: status.OK };
      } catch (err) {
        return { kind, started, ended: Date.now(), code: (err as ServiceError).code ?? -1 };
      }
    };
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      for (let n = 0; !childGone; n++) {
        const rec = await once(w * 7 + n);
        records.push(rec);
        if (rec.code !== status.OK) await sleep(20); // refused after shutdown began: don't spin
      }
    });

    await sleep(LOAD_BEFORE_SIGNAL_MS);
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), SHUTDOWN_GRACE_MS + 10_000))),
    ]);
    clearTimeout(timer);
    const stoppedAfter = Date.now() - signalledAt;
    await Promise.all(workers);
    clients.close();

    // Exit 0, drained rather than forced, well within the grace period.
    expect(exit).toEqual({ code: 0, signal: null });
    expect(logs.find((l) => l.msg === 'apikeys stopped')).toMatchObject({ calls: 'drained' });
    expect(stoppedAfter).toBeLessThan(SHUTDOWN_GRACE_MS);

    // Every call sent before the signal completed successfully, including those still running
    // when it arrived; calls after it were refused as UNAVAILABLE, nothing else.
    const before = records.filter((r) => r.started < signalledAt);
    const inFlight = before.filter((r) => r.ended >= signalledAt);
    const after = records.filter((r) => r.started >= signalledAt);
    expect(before.length).toBeGreaterThan(100);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(before.filter((r) => r.code !== status.OK)).toEqual([]);
    expect(after.filter((r) => r.code !== status.OK && r.code !== status.UNAVAILABLE)).toEqual([]);

    // Usage: with periodic flushes off, only the shutdown flush wrote it. Each verified key has
    // exactly as many verifications recorded as succeeded, and last_used_at at least as late as
    // the start of its last successful verification.
    const valid = records.filter((r) => r.kind === 'verify' && r.code === status.OK);
    const perKey = new Map<string, { count: number; lastStarted: number }>();
    for (const r of valid) {
      const e = perKey.get(r.keyId!) ?? { count: 0, lastStarted: 0 };
      perKey.set(r.keyId!, { count: e.count + 1, lastStarted: Math.max(e.lastStarted, r.started) });
    }
    expect(perKey.size).toBe(keys.length);
    const docs = await db.db
      .collection<{ _id: string; last_used_at: Date }>('key_last_used')
      .find({ _id: { $in: [...perKey.keys(), unused.key!.id] } })
      .toArray();
    const lastUsed = new Map<string, Date | null>(docs.map((d) => [d._id, d.last_used_at]));
    for (const [id, e] of perKey) {
      expect(lastUsed.get(id)).toBeInstanceOf(Date);
      expect(lastUsed.get(id)!.getTime()).toBeGreaterThanOrEqual(e.lastStarted - 1);
    }
    expect(lastUsed.get(unused.key!.id)).toBeUndefined();
    const daily = await db.db
      .collection<{ key_id: string; count: number }>('key_usage_daily')
      .aggregate<{ _id: string; total: number }>([{ $group: { _id: '$key_id', total: { $sum: '$count' } } }])
      .toArray();
    expect(Object.fromEntries(daily.map((d) => [d._id, d.total]))).toEqual(Object.fromEntries([...perKey].map(([id, e]) => [id, e.count])));
    process.stdout.write(
      `shutdown: ${before.length} calls before SIGTERM (${inFlight.length} in flight at the signal), ` +
        `${after.filter((r) => r.code === status.OK).length} accepted and ${after.filter((r) => r.code !== status.OK).length} refused after it; ` +
        `exit after ${stoppedAfter} ms; ${valid.length} verifications flushed for ${perKey.size} keys\n`,
    );
  }, 60_000);
});
