/**
 * `npm run bench`: ghz against the real server, one scenario after another with the same
 * concurrency and duration, each compared with an empty handler on the same server (the
 * transport's ceiling). Prints a table and writes bench/results/latest.json.
 * Settings: BENCH_DURATION (default 10s), BENCH_CONCURRENCY (default 50), MONGODB_URI (else an
 * ephemeral FerretDB).
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startApp, type RunningApp } from '../src/app';
import { bearer, connectClients } from '../src/client/promiseClient';
import { loadConfig } from '../src/config/config';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { generateSecret } from '../src/domain/keyFormat';
import { createLogger } from '../src/logging/logger';

const ROOT = join(__dirname, '..');
const GHZ_VERSION = 'v0.93.0';
const DURATION = process.env.BENCH_DURATION ?? '10s';
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const COLD_KEYS = 50;
const say = (s: string) => process.stdout.write(`[bench] ${s}\n`);

function ghzBinary(): string {
  const local = join(ROOT, 'tools', 'bin', 'ghz');
  if (existsSync(local)) return local;
  if (spawnSync('ghz', ['--version']).status === 0) return 'ghz';
  say(`installing ghz ${GHZ_VERSION} with Go into tools/bin (first run only)…`);
  const r = spawnSync('go', ['install', `github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}`], {
    env: { ...process.env, GOBIN: join(ROOT, 'tools', 'bin') },
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('could not install ghz: install Go ≥ 1.22, or put ghz on PATH');
  return local;
}

interface Scenario {
  name: string;
  call: string;
  /** One request, or an array ghz sends round-robin. */
  data: unknown;
}

interface Row {
  scenario: string;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  reads: number;
  keyLookups: number;
  writes: number;
}

const VERIFY = 'apikeys.v1.VerifyService.VerifyKey';
const EMPTY = 'apikeys.bench.v1.BenchService.Empty';

// ghz must run asynchronously: the server under test lives in this process's event loop.
const execFileAsync = promisify(execFile);

/**
 * On a machine with two or more cores, the server (this process) and ghz get a core each, so
 * the load generator does not steal the server's CPU and the ratios stop swinging with the
 * scheduler. Without taskset both share all cores, as before.
 */
const PIN = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2;

async function runGhz(ghz: string, addr: string, token: string, s: Scenario, app: RunningApp): Promise<Row> {
  const dataFile = join(ROOT, 'bench', 'results', 'data.json');
  writeFileSync(dataFile, JSON.stringify(s.data));
  const before = { ...app.storage.counters };
  say(`${s.name}: ${DURATION} at concurrency ${CONCURRENCY}…`);
  const { stdout: out } = await execFileAsync(
    PIN ? 'taskset' : ghz,
    [
      ...(PIN ? ['-c', '1-' + String(cpus().length - 1), ghz] : []),
      '--insecure',
      '--proto', s.call === EMPTY ? join(ROOT, 'bench', 'proto', 'bench.proto') : join(ROOT, 'proto', 'apikeys', 'v1', 'verify_service.proto'),
      '--import-paths', `${join(ROOT, 'proto')},${join(ROOT, 'bench', 'proto')}`,
      '--call', s.call,
      '--data-file', dataFile,
      '--metadata', JSON.stringify({ authorization: `Bearer ${token}` }),
      '--concurrency', String(CONCURRENCY),
      '--connections', '4',
      '--duration', DURATION,
      '--format', 'json',
      addr,
    ],
    { maxBuffer: 512 * 1024 * 1024 },
  );
  const report = JSON.parse(out) as {
    rps: number;
    latencyDistribution: { percentage: number; latency: number }[] | null;
    statusCodeDistribution: Record<string, number>;
    errorDistribution?: Record<string, number>;
  };
  if (!report.latencyDistribution) {
    throw new Error(`${s.name}: no successful calls; ghz errors: ${JSON.stringify(report.errorDistribution)}`);
  }
  const latencies = report.latencyDistribution;
  const pct = (p: number) => (latencies.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  // ghz cuts the calls in flight when the duration ends ("transport is closing", Canceled):
  // those are the client's doing, not the server's errors.
  const serverErrors = Object.entries(report.errorDistribution ?? {}).filter(([e]) => !/(transport|client connection) is closing|Canceled/.test(e));
  const errors = serverErrors.reduce((n, [, v]) => n + v, 0);
  if (errors > 0) say(`${s.name}: errors ${JSON.stringify(Object.fromEntries(serverErrors))}`);
  return {
    scenario: s.name,
    rps: Math.round(report.rps),
    p50ms: pct(50),
    p99ms: pct(99),
    errors,
    reads: app.storage.counters.reads - before.reads,
    keyLookups: app.storage.counters.keyLookups - before.keyLookups,
    writes: app.storage.counters.writes - before.writes,
  };
}

function emptyService(): grpc.ServiceDefinition {
  const pkg = protoLoader.loadSync(join(ROOT, 'bench', 'proto', 'bench.proto'), {
    includeDirs: [join(ROOT, 'proto'), join(ROOT, 'bench', 'proto')],
  });
  return (grpc.loadPackageDefinition(pkg) as any).apikeys.bench.v1.BenchService.service;
}

async function startServer(uri: string, env: Record<string, string>) {
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const jwtSecret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    MONGODB_URI: uri,
    MONGODB_DATABASE: `bench_${randomBytes(3).toString('hex')}`,
    AUTH_JWT_SECRET: jwtSecret,
    VERIFY_TOKENS: verifyToken,
    LOG_LEVEL: 'warn',
    METRICS_ADDR: 'off',
    ...env,
  });
  const app = await startApp(config, createLogger('warn'), {
    beforeBind: (server) => server.addService(emptyService(), { Empty: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, {}) }),
  });
  return { app, verifyToken, jwtSecret, addr: `127.0.0.1:${app.port}` };
}

function ratioRows(rows: Row[], ceiling: Row) {
  return rows.map((r) => ({
    ...r,
    rpsRatio: +(r.rps / ceiling.rps).toFixed(3),
    p99Ratio: +(r.p99ms / ceiling.p99ms).toFixed(3),
  }));
}

async function main(): Promise<void> {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const ghz = ghzBinary();
  let uri = process.env.MONGODB_URI;
  const db = uri ? undefined : await startEphemeralDatabase({ log: say });
  uri ??= db!.uri;
  say(`database: ${db?.description ?? uri}`);
  // Pinned after the database started, so its server keeps every core.
  if (PIN) {
    spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)]);
    say(`server pinned to core 0, ghz to cores 1-${cpus().length - 1}`);
  }

  // Server 1: the cache on (defaults).
  const warm = await startServer(uri, {});
  const orgId = newId('org');
  const clients = connectClients(warm.addr);
  const admin = bearer(await mintUserToken(warm.jwtSecret, { sub: newId('usr'), orgId, role: 'admin' }));
  const { secret } = await clients.keys.createKey({ name: 'bench', scopes: ['read'] }, admin);
  clients.close();
  const unknownKeys = Array.from({ length: 5000 }, () => ({ key: generateSecret('sk', 'live') }));
  const runAll = async (scenarios: Scenario[], srv: { addr: string; verifyToken: string; app: RunningApp }) => {
    const rows: Row[] = [];
    for (const sc of scenarios) rows.push(await runGhz(ghz, srv.addr, srv.verifyToken, sc, srv.app));
    return rows;
  };
  const warmRows = await runAll([
    { name: 'empty handler (ceiling)', call: EMPTY, data: { key: secret } },
    { name: 'verify valid cached', call: VERIFY, data: { key: secret, requiredScopes: ['read'] } },
    { name: 'verify malformed', call: VERIFY, data: { key: 'sk_live_not-a-real-key' } },
    { name: `verify unknown (${unknownKeys.length} distinct)`, call: VERIFY, data: unknownKeys },
    { name: 'verify one unknown key', call: VERIFY, data: { key: unknownKeys[0].key } },
  ], warm);
  say('stopping the cache-on server…');
  await warm.app.stop();

  // Server 2: the cache off, so every valid verification reads MongoDB.
  const cold = await startServer(uri, { VERIFY_CACHE_MAX_ENTRIES: '0', ORG_KEY_LIMIT: String(COLD_KEYS) });
  const coldClients = connectClients(cold.addr);
  const coldAdmin = bearer(await mintUserToken(cold.jwtSecret, { sub: newId('usr'), orgId, role: 'admin' }));
  // Distinct keys, so concurrent misses cannot share one read: every verification reads MongoDB.
  const coldKeys: { key: string }[] = [];
  for (let i = 0; i < COLD_KEYS; i++) {
    coldKeys.push({ key: (await coldClients.keys.createKey({ name: `bench-cold-${i}`, scopes: ['read'] }, coldAdmin)).secret });
  }
  coldClients.close();
  say(`created ${COLD_KEYS} keys for the cache-off scenario`);
  const coldRows = await runAll([
    { name: 'empty handler (ceiling, cache-off server)', call: EMPTY, data: coldKeys[0] },
    { name: `verify cold (cache off, ${COLD_KEYS} keys)`, call: VERIFY, data: coldKeys },
  ], cold);
  say('stopping the cache-off server…');
  await cold.app.stop();
  await db?.stop();

  const results = [...ratioRows(warmRows, warmRows[0]), ...ratioRows(coldRows, coldRows[0])];
  console.table(results);
  const file = join(ROOT, 'bench', 'results', 'latest.json');
  writeFileSync(
    file,
    JSON.stringify({ date: new Date().toISOString(), duration: DURATION, concurrency: CONCURRENCY, database: db?.description ?? 'MONGODB_URI', results }, null, 2),
  );
  say(`wrote ${file}`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
