/**
 * Soak: two service processes (src/main.ts) on one database holding SOAK_KEYS keys, under steady
 * mixed traffic for SOAK_MINUTES, loopback only. Traffic is paced (open loop), as production
 * traffic is: SOAK_VERIFY_RATE verifications per second of a hot set of keys (plus a few
 * malformed ones), one unknown and one uncached stored key every 30 s, and one key-management
 * call (create, get, update, list, revoke in turn) every SOAK_ADMIN_EVERY_MS, spread over both
 * instances. Every minute a key cached by B is revoked through A.
 *
 * Fails (exit 1) when: a call gets no answer within its deadline or an unexpected one; B answers
 * VALID for a revoked key more than 1 s after RevokeKey answered on A; an instance's resident
 * memory (median of the later half of the samples after warm-up) or its heap after a full GC
 * ends more than 20 % above its earlier level; an instance exits.
 * Also reports the database's CPU while both instances sit idle, before and after the traffic,
 * and the size of every collection that grows with use.
 *
 * Run: npx tsx bench/soak.ts  (SOAK_MINUTES=10, SOAK_KEYS=20000, SOAK_VERIFY_RATE=200,
 * SOAK_ADMIN_EVERY_MS=30000, SOAK_PROBE_EVERY_MS=60000, SOAK_IDLE_SECONDS=60,
 * SOAK_SETTLE_SECONDS=15; MONGODB_URI to use that server instead of an ephemeral FerretDB).
 * Writes bench/results/soak.json, or SOAK_RESULTS. test/integration/soak.test.ts runs a short one.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MongoClient } from 'mongodb';
import { bearer, connectClients, type ApiKeysClients } from '../src/client/promiseClient';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase, type EphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { generateSecret } from '../src/domain/keyFormat';
import { VerifyCode } from '../src/gen/apikeys/v1/verify_service';
import type { KeyDocument } from '../src/storage/documents';
import { storeKeyCopies } from '../test/support/keyCopies';
import { sampleValue, scrape } from '../test/support/prometheus';
import { startServiceProcess, type ServiceProcess } from '../test/support/serviceProcess';
import { cpuSeconds } from './procStats';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const KEYS = Number(process.env.SOAK_KEYS ?? 20_000);
const VERIFY_RATE = Number(process.env.SOAK_VERIFY_RATE ?? 200);
// On FerretDB every query scans: with 20 000 keys one lookup costs ~1 s of its CPU, and a
// key-management call makes several. These rates keep it well below saturation on 2 cores.
const ADMIN_EVERY_MS = Number(process.env.SOAK_ADMIN_EVERY_MS ?? 30_000);
const HOT_KEYS = 200;
const SCAN_EVERY_MS = 30_000;
const VERIFY_DEADLINE_MS = 10_000;
const ADMIN_DEADLINE_MS = 60_000;
const SAMPLE_EVERY_MS = 10_000;
const PROBE_EVERY_MS = Number(process.env.SOAK_PROBE_EVERY_MS ?? 60_000);
// A whole retention-sweep interval, so the idle figure includes one sweep of each instance; on
// FerretDB a sweep that checks the claims left by traffic scans api_keys (~0.5 s of its CPU at 2 000 keys).
const IDLE_SECONDS = Number(process.env.SOAK_IDLE_SECONDS ?? 60);
// Work still in flight when traffic stops (queries whose callers gave up) is not idle time.
const SETTLE_SECONDS = Number(process.env.SOAK_SETTLE_SECONDS ?? 15);
const RESULTS = process.env.SOAK_RESULTS ?? join(__dirname, 'results', 'soak.json');
const REVOCATION_BOUND_MS = 1_000;
const GROWTH_LIMIT = 1.2;
const DATABASE = 'soak';
const GROWING = ['key_changes', 'key_mutations', 'create_requests', 'audit_events', 'key_usage_daily', 'key_last_used'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`[soak] ${s}\n`);

function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kb) / 102.4) / 10;
}

/** Heap in use right after a full GC (the service collects on SIGUSR2: test/support/gcOnSignal.cjs), MiB. */
async function settledHeap(svc: ServiceProcess): Promise<number> {
  svc.child.kill('SIGUSR2');
  await sleep(1_000);
  return Math.round((sampleValue(await scrape(svc.metricsPort!), 'nodejs_heap_size_used_bytes') ?? NaN) / 104_857.6) / 10;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** Calls by kind: latencies, and answers that were not the expected ones. */
class Tally {
  readonly latencies = new Map<string, number[]>();
  readonly unexpected = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;

  /** Runs `call` without waiting for it (open loop); its failure is recorded, never thrown. */
  fire(kind: string, call: () => Promise<void>): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const started = performance.now();
    call()
      .catch((err: unknown) => {
        const code = (err as Partial<ServiceError>).code;
        this.fail(`${kind}: ${code !== undefined ? status[code] : String(err)}`);
      })
      .finally(() => {
        this.inFlight--;
        this.calls++;
        if (!this.latencies.has(kind)) this.latencies.set(kind, []);
        this.latencies.get(kind)!.push(performance.now() - started);
      });
  }

  fail(what: string): void {
    this.unexpected.set(what, (this.unexpected.get(what) ?? 0) + 1);
  }

  summary(): Record<string, { n: number; p50: number; p99: number; max: number }> {
    return Object.fromEntries(
      [...this.latencies].map(([kind, l]) => {
        const sorted = [...l].sort((x, y) => x - y);
        return [
          kind,
          {
            n: sorted.length,
            p50: Math.round(pct(sorted, 50)),
            p99: Math.round(pct(sorted, 99)),
            max: Math.round(sorted[sorted.length - 1]),
          },
        ];
      }),
    );
  }
}

/** Calls `tick` every `everyMs` until `endAt` (not waiting for what it starts). */
async function every(everyMs: number, endAt: number, tick: (n: number) => void): Promise<void> {
  for (let n = 0, next = Date.now(); next < endAt; n++, next += everyMs) {
    await sleep(Math.max(0, next - Date.now()));
    tick(n);
  }
}

async function main(): Promise<void> {
  const db: EphemeralDatabase | undefined = process.env.MONGODB_URI ? undefined : await startEphemeralDatabase();
  const uri = process.env.MONGODB_URI ?? db!.uri;
  const secrets = {
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    VERIFY_TOKENS: `vt_${randomBytes(24).toString('base64url')}`,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
  };
  // Its callers wait up to ADMIN_DEADLINE_MS for a call that reads storage, so queries may run as
  // long: on FerretDB every read of 20 000 keys is a scan, seconds long on a loaded machine.
  const env = {
    ...secrets,
    MONGODB_URI: uri,
    MONGODB_DATABASE: DATABASE,
    LOG_LEVEL: 'warn',
    METRICS_ADDR: 'on',
    MONGODB_OPERATION_TIMEOUT_MS: String(ADMIN_DEADLINE_MS),
  };
  const mongo = await MongoClient.connect(uri);
  const services: ServiceProcess[] = [];
  try {
    services.push(await startServiceProcess(env, { gcOnSignal: true })); // creates the indexes
    services.push(await startServiceProcess(env, { gcOnSignal: true }));
    const [a, b] = services;
    const clients = services.map((s) => connectClients(`127.0.0.1:${s.port}`));
    const client = (n: number): ApiKeysClients => clients[n % 2];
    const service = bearer(secrets.VERIFY_TOKENS);
    const admin = async (orgId: string) =>
      bearer(await mintUserToken(secrets.AUTH_JWT_SECRET, { sub: newId('usr'), orgId, role: 'admin' }, '12h'));

    // The stored keys: copies of one key the service created, each with its own secret.
    say(`storing ${KEYS} keys in inserts of 50…`);
    const template = await clients[0].keys.createKey(
      { name: 'soak', scopes: ['read', 'write'], metadata: { team: 'soak' } },
      await admin(newId('org')),
    );
    const keys = mongo.db(DATABASE).collection<KeyDocument>('api_keys');
    const model = (await keys.findOne({ _id: template.key!.id }))!;
    const stored = await storeKeyCopies(keys, model, KEYS);
    const hot = stored.slice(0, HOT_KEYS);

    const ferretPid = db?.pid;
    const idleCpu = async () => {
      if (!ferretPid) return null;
      await sleep(SETTLE_SECONDS * 1000);
      const before = cpuSeconds(ferretPid);
      await sleep(IDLE_SECONDS * 1000);
      return Math.round(((cpuSeconds(ferretPid) - before) / IDLE_SECONDS) * 1000) / 10;
    };
    say('database CPU with both instances idle…');
    const idleBefore = await idleCpu();

    const tally = new Tally();
    const started = Date.now();
    const endAt = started + MINUTES * 60_000;
    const expectCode = (want: VerifyCode) => (r: { code: VerifyCode }) => {
      if (r.code !== want) throw new Error(`answered ${VerifyCode[r.code]}`);
    };
    const verify = (n: number, kind: string, secret: string, want: VerifyCode, deadlineMs = VERIFY_DEADLINE_MS) =>
      tally.fire(kind, () =>
        client(n)
          .verify.verifyKey({ key: secret }, service, { deadline: Date.now() + deadlineMs })
          .then(expectCode(want)),
      );

    // Verify: every 100 ms a tenth of the rate, mostly hot keys (cached), some malformed.
    const verifyTraffic = every(100, endAt, (tick) => {
      for (let i = 0; i < VERIFY_RATE / 10; i++) {
        const n = tick * 1000 + i;
        if (i % 30 === 29) verify(n, 'verify malformed', `sk_live_${randomBytes(8).toString('hex')}`, VerifyCode.VERIFY_CODE_MALFORMED);
        else verify(n, 'verify hot', hot[n % HOT_KEYS], VerifyCode.VERIFY_CODE_VALID);
      }
    });
    // Each of these is a read of storage by hash (a scan of every key on FerretDB).
    const scanTraffic = every(SCAN_EVERY_MS, endAt, (n) => {
      verify(n, 'verify unknown', generateSecret('sk', 'live'), VerifyCode.VERIFY_CODE_NOT_FOUND, ADMIN_DEADLINE_MS);
      verify(
        n + 1,
        'verify uncached',
        stored[HOT_KEYS + Math.floor(Math.random() * (KEYS - HOT_KEYS))],
        VerifyCode.VERIFY_CODE_VALID,
        ADMIN_DEADLINE_MS,
      );
    });
    // Key management in one organization: create, get, update, list, revoke in turn.
    const trafficAdmin = await admin(newId('org'));
    const live: string[] = [];
    let conflicts = 0;
    const adminOpts = () => ({ deadline: Date.now() + ADMIN_DEADLINE_MS });
    const adminTraffic = every(ADMIN_EVERY_MS, endAt, (n) => {
      const c = client(n);
      const id = live[n % Math.max(1, live.length)];
      switch (n % 5) {
        case 0:
          tally.fire('create', async () => {
            live.push((await c.keys.createKey({ name: `soak ${n}`, scopes: ['read'] }, trafficAdmin, adminOpts())).key!.id);
          });
          return;
        case 1:
          if (id) tally.fire('get', () => c.keys.getKey({ id }, trafficAdmin, adminOpts()).then(() => undefined));
          return;
        case 2:
          if (id) {
            tally.fire('update', () =>
              c.keys.updateKey({ key: { id, name: `renamed ${n}` }, updateMask: ['name'] }, trafficAdmin, adminOpts()).then(
                () => {},
                (err: unknown) => {
                  // A slow call still changing the same key, or the key revoked meanwhile: refused, as it should be.
                  const code = (err as Partial<ServiceError>).code;
                  if (code !== status.ABORTED && code !== status.FAILED_PRECONDITION) throw err;
                  conflicts++;
                },
              ),
            );
          }
          return;
        case 3:
          tally.fire('list', () => c.keys.listKeys({ pageSize: 20 }, trafficAdmin, adminOpts()).then(() => undefined));
          return;
        case 4:
          // Keep a few keys to get and update; revoke the oldest of the rest.
          if (live.length > 3) {
            const victim = live.shift()!;
            tally.fire('revoke', () => c.keys.revokeKey({ id: victim }, trafficAdmin, adminOpts()).then(() => undefined));
          }
          return;
      }
    });

    // Revocation across instances: a key B has cached, revoked through A.
    const probes: { lastValidAfterMs: number; firstRefusedAfterMs: number }[] = [];
    const probeAdmin = await admin(newId('org'));
    const probe = async () => {
      const created = await clients[0].keys.createKey({ name: 'probe', scopes: ['read'] }, probeAdmin, adminOpts());
      const verifyOnB = () => clients[1].verify.verifyKey({ key: created.secret }, service, { deadline: Date.now() + ADMIN_DEADLINE_MS });
      if ((await verifyOnB()).code !== VerifyCode.VERIFY_CODE_VALID) throw new Error('probe key not valid on B');
      await clients[0].keys.revokeKey({ id: created.key!.id }, probeAdmin, adminOpts());
      const revoked = performance.now();
      let lastValid = 0;
      for (;;) {
        const sent = performance.now();
        const r = await verifyOnB();
        if (r.code !== VerifyCode.VERIFY_CODE_VALID) {
          probes.push({ lastValidAfterMs: Math.round(lastValid), firstRefusedAfterMs: Math.round(performance.now() - revoked) });
          return;
        }
        lastValid = sent - revoked;
        if (lastValid > 10_000) throw new Error('B still answers VALID 10 s after the revocation');
        await sleep(10);
      }
    };
    const probing = every(PROBE_EVERY_MS, endAt, () => tally.fire('revocation probe', probe));

    /** What an instance's /metrics says about its cache and its change-log lag. */
    const inside = async (svc: ServiceProcess) => {
      const m = await scrape(svc.metricsPort!);
      const v = (name: string, labels: Record<string, string> = {}) => sampleValue(m, name, labels) ?? 0;
      return {
        hits: v('apikeys_verify_cache_lookups_total', { result: 'hit' }),
        misses: v('apikeys_verify_cache_lookups_total', { result: 'miss' }),
        unconfirmed: v('apikeys_verify_cache_lookups_total', { result: 'unconfirmed' }),
        lagS: v('apikeys_invalidation_lag_seconds'),
        swept: m.filter((x) => x.name === 'apikeys_retention_deleted_total').reduce((s, x) => s + x.value, 0),
      };
    };
    const samples: Record<string, unknown>[] = [];
    let warm: { s: number; heap: number[] } | undefined;
    const monitor = (async () => {
      let last = { at: started, cpu: ferretPid ? cpuSeconds(ferretPid) : 0, calls: 0 };
      while (Date.now() < endAt) {
        await sleep(Math.min(SAMPLE_EVERY_MS, endAt - Date.now()));
        // Warm-up: the first third of the run, at most 2 minutes.
        if (!warm && Date.now() - started >= Math.min(120_000, (endAt - started) / 3)) {
          warm = { s: Math.round((Date.now() - started) / 1000), heap: [await settledHeap(a), await settledHeap(b)] };
        }
        const now = { at: Date.now(), cpu: ferretPid ? cpuSeconds(ferretPid) : 0, calls: tally.calls };
        const seconds = (now.at - last.at) / 1000;
        const sizes: Record<string, number> = {};
        for (const c of GROWING) sizes[c] = await mongo.db(DATABASE).collection(c).estimatedDocumentCount();
        const sample = {
          s: Math.round((now.at - started) / 1000),
          callsPerS: Math.round((now.calls - last.calls) / seconds),
          inFlight: tally.inFlight,
          rssMiB: [rssMiB(a.child.pid!), rssMiB(b.child.pid!)],
          dbCpuPct: ferretPid ? Math.round(((now.cpu - last.cpu) / seconds) * 1000) / 10 : null,
          sizes,
          a: await inside(a),
          b: await inside(b),
        };
        last = now;
        samples.push(sample);
        say(JSON.stringify(sample));
      }
    })();
    say(`traffic for ${MINUTES} min: ${VERIFY_RATE} verifications/s, a key-management call every ${ADMIN_EVERY_MS} ms…`);
    await Promise.all([verifyTraffic, scanTraffic, adminTraffic, probing, monitor]);
    while (tally.inFlight > 0 && Date.now() < endAt + ADMIN_DEADLINE_MS) await sleep(100);
    const endHeap = [await settledHeap(a), await settledHeap(b)];
    // RSS after warm-up, per instance: the median of the first half of the samples and of the second.
    const afterWarmUp = samples.filter((x) => warm && (x.s as number) > warm.s + SAMPLE_EVERY_MS / 1000).map((x) => x.rssMiB as number[]);
    const half = Math.floor(afterWarmUp.length / 2);
    const rss = [0, 1].map((i) => ({
      earlier: median(afterWarmUp.slice(0, half).map((r) => r[i])),
      later: median(afterWarmUp.slice(half).map((r) => r[i])),
    }));
    say('database CPU with both instances idle again…');
    const idleAfter = await idleCpu();

    const exits = services.map((s) => s.child.exitCode);
    // What the services logged at warn or above, by message and error: the why of any failure.
    const logged = new Map<string, number>();
    for (const line of services.flatMap((s) => s.logs)) {
      if (typeof line.level !== 'number' || line.level < 40) continue;
      const err = line.err as { name?: string; message?: string } | undefined;
      const what = `${String(line.msg)}${err ? ` (${String(err.name)}: ${String(err.message).slice(0, 120)})` : ''}`;
      logged.set(what, (logged.get(what) ?? 0) + 1);
    }
    const report = {
      minutes: MINUTES,
      keys: KEYS,
      verifyRate: VERIFY_RATE,
      adminEveryMs: ADMIN_EVERY_MS,
      database: db?.description ?? 'MONGODB_URI',
      calls: tally.calls,
      updateConflicts: conflicts,
      maxInFlight: tally.maxInFlight,
      unexpected: Object.fromEntries(tally.unexpected),
      logged: Object.fromEntries(logged),
      latencyMs: tally.summary(),
      revocation: probes,
      rssMiB: rss,
      heapAfterGcMiB: { warm: warm?.heap, end: endHeap },
      dbIdleCpuPct: { before: idleBefore, after: idleAfter },
      samples,
      serviceExits: exits,
    };
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, JSON.stringify(report, null, 2));

    const failures: string[] = [];
    if (tally.unexpected.size > 0) failures.push(`unexpected answers: ${JSON.stringify(report.unexpected)}`);
    if (tally.inFlight > 0) failures.push(`${tally.inFlight} calls never answered`);
    if (exits.some((e) => e !== null)) failures.push(`a service exited: ${JSON.stringify(exits)}`);
    const worstProbe = Math.max(0, ...probes.map((p) => p.lastValidAfterMs));
    if (probes.length === 0) failures.push('no revocation probe completed');
    else if (worstProbe > REVOCATION_BOUND_MS)
      failures.push(`revocation: VALID ${worstProbe} ms after it (bound ${REVOCATION_BOUND_MS} ms)`);
    rss.forEach(({ earlier, later }, i) => {
      if (!(later <= earlier * GROWTH_LIMIT)) failures.push(`instance ${'AB'[i]}: RSS ${earlier} → ${later} MiB (medians)`);
    });
    endHeap.forEach((heap, i) => {
      if (!warm || !(heap <= warm.heap[i] * GROWTH_LIMIT))
        failures.push(`instance ${'AB'[i]}: heap after GC ${String(warm?.heap[i])} → ${heap} MiB`);
    });
    say(`calls ${tally.calls} (at most ${tally.maxInFlight} in flight); latency ms ${JSON.stringify(report.latencyMs)}`);
    say(
      `revocation probes, ms after RevokeKey answered (last VALID / first refusal): ${probes.map((p) => `${p.lastValidAfterMs}/${p.firstRefusedAfterMs}`).join(' ')}`,
    );
    if (logged.size > 0) say(`logged by the services: ${JSON.stringify(report.logged)}`);
    say(`RSS after warm-up, MiB (medians, earlier → later half): ${rss.map((r) => `${r.earlier} → ${r.later}`).join(', ')}`);
    say(
      `heap after GC, MiB: warm ${JSON.stringify(warm?.heap)} → end ${JSON.stringify(endHeap)}; database CPU idle: ${String(idleBefore)} % → ${String(idleAfter)} % of a core`,
    );
    clients.forEach((c) => c.close());
    if (failures.length > 0) {
      say(`FAILED:\n  ${failures.join('\n  ')}`);
      process.exitCode = 1;
    } else say('passed');
  } finally {
    services.forEach((s) => s.kill());
    await mongo.close();
    await db?.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`[soak] ${err instanceof Error ? String(err.stack) : String(err)}\n`);
  process.exit(1);
});
