/**
 * `npm run bench [-- options]`: VerifyKey against the transport's floor, on the production build
 * run as production runs it (`node dist/main.js`, default settings: LOG_LEVEL=info, metrics on).
 *
 * Every scenario of a group is measured in interleaved rounds (A B C … A B C …) after one
 * discarded warm-up round, so no scenario pays for warming up the process and a drift of the
 * machine hits all of them alike; ratios are taken within each round, then summarised as median
 * and min–max over the rounds, with the server's CPU time per call beside req/s and p99. Two
 * floors: grpc.health.v1.Health/Check, unauthenticated and outside our interceptors (the
 * transport), and an empty handler on VerifyKey's path, called with a service token (transport
 * and our interceptors; bench/authenticatedFloor.cjs adds it to the server without shipping it).
 *
 * The server gets core 0 to itself (taskset); ghz, this script and the database get the others.
 *
 * Options: --rounds N (measured rounds, default 5), --duration 5s (per scenario and round),
 * --concurrency 50, --connections 4, --rate N (calls/s cap), --quick (2 rounds of 2 s, for
 * development), --storage (also the storage-bound group: cache off, distinct unknown keys),
 * --profile SECONDS (instead of the rounds: a CPU profile of the server under cached-Verify load,
 * or --profile-of health | empty: a floor, summarised by bench/cpuprofile.ts), --label NAME (results file name,
 * default "latest"), --no-build (reuse dist/). bench/README.md has the method and figures.
 * MONGODB_URI: use that server instead of an ephemeral FerretDB. Writes bench/results/<label>.json.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bearer, connectClients } from '../src/client/promiseClient';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { generateSecret } from '../src/domain/keyFormat';
import { sampleValue, scrape } from '../test/support/prometheus';
import { startServiceProcess, type ServiceProcess } from '../test/support/serviceProcess';
import { summariseProfile } from './cpuprofile';
import { ghzBinary, ROOT, runGhz, type GhzCall, type GhzLoad, type GhzResult } from './ghz';
import { cpuSeconds } from './procStats';

const say = (s: string) => process.stdout.write(`[bench] ${s}\n`);
const RESULTS = join(ROOT, 'bench', 'results');

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    concurrency: { type: 'string', default: '50' },
    connections: { type: 'string', default: '4' },
    rate: { type: 'string' },
    quick: { type: 'boolean', default: false },
    storage: { type: 'boolean', default: false },
    profile: { type: 'string' },
    'profile-of': { type: 'string', default: 'verify' },
    label: { type: 'string', default: 'latest' },
    'no-build': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(opts.rounds ?? (opts.quick ? 2 : 5));
const DURATION = opts.duration ?? (opts.quick ? '2s' : '5s');

/** The server alone on core 0, everything else on the other cores; nothing pinned on one core or without taskset. */
const PIN = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2;
const SERVER_CPUS = '0';
const OTHER_CPUS = `1-${cpus().length - 1}`;

const LOAD: GhzLoad = {
  duration: DURATION,
  concurrency: Number(opts.concurrency),
  connections: Number(opts.connections),
  rps: opts.rate ? Number(opts.rate) : undefined,
  cpus: PIN ? OTHER_CPUS : undefined,
};

const PROTO = join(ROOT, 'proto');
const BENCH_PROTO = join(ROOT, 'bench', 'proto');
const HEALTH_PROTO = join(ROOT, 'node_modules', 'grpc-health-check', 'proto', 'health', 'v1');

interface Scenario {
  name: string;
  call: GhzCall;
}

/** A server (its settings) and the scenarios measured on it, one round after another. */
interface Group {
  name: string;
  server: ServiceProcess;
  scenarios: Scenario[];
}

const health = (): Scenario => ({
  name: 'health Check (transport floor)',
  call: {
    call: 'grpc.health.v1.Health.Check',
    proto: join(HEALTH_PROTO, 'health.proto'),
    importPaths: [HEALTH_PROTO],
    data: { service: '' },
  },
});

const serviceToken = (s: ServiceProcess) => ({ authorization: `Bearer ${s.verifyToken}` });

const authenticatedEmpty = (s: ServiceProcess, data: unknown): Scenario => ({
  name: 'empty handler, authenticated (interceptor floor)',
  call: {
    call: 'apikeys.v1.VerifyService.Empty',
    proto: join(BENCH_PROTO, 'bench.proto'),
    importPaths: [BENCH_PROTO],
    data,
    metadata: serviceToken(s),
  },
});

const verify = (s: ServiceProcess, name: string, data: unknown): Scenario => ({
  name,
  call: {
    call: 'apikeys.v1.VerifyService.VerifyKey',
    proto: join(PROTO, 'apikeys', 'v1', 'verify_service.proto'),
    importPaths: [PROTO],
    data,
    metadata: serviceToken(s),
  },
});

async function startServer(uri: string, env: Record<string, string>, nodeArgs: string[] = []) {
  const server = await startServiceProcess(
    { MONGODB_URI: uri, MONGODB_DATABASE: `bench_${randomBytes(3).toString('hex')}`, METRICS_ADDR: 'on', ...env },
    {
      entry: 'build',
      nodeArgs: ['--require', join(ROOT, 'bench', 'authenticatedFloor.cjs'), ...nodeArgs],
      keepLogs: false,
      cpus: PIN ? SERVER_CPUS : undefined,
    },
  );
  return { server, addr: `127.0.0.1:${server.port}` };
}

/** Creates `n` keys with scope "read" on `server`; returns their secrets. */
async function createKeys(server: ServiceProcess, n: number): Promise<string[]> {
  const clients = connectClients(`127.0.0.1:${server.port}`);
  const admin = bearer(await mintUserToken(server.jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
  const secrets: string[] = [];
  for (let i = 0; i < n; i++) secrets.push((await clients.keys.createKey({ name: `bench-${i}`, scopes: ['read'] }, admin)).secret);
  clients.close();
  return secrets;
}

/** Key reads from storage (Verify cache misses and unconfirmed entries), from the server's own metrics. */
async function keyLookups(server: ServiceProcess): Promise<number> {
  const samples = await scrape(server.metricsPort!);
  const n = (result: string) => sampleValue(samples, 'apikeys_verify_cache_lookups_total', { result }) ?? 0;
  return n('miss') + n('unconfirmed');
}

interface Run extends GhzResult {
  scenario: string;
  round: number;
  /**
   * The server's CPU time per call (user + system, µs). Less sensitive than req/s to other work
   * on a shared machine: what that work takes from the server's core lowers req/s, not this.
   */
  cpuUsPerCall: number;
  keyLookups: number;
  logBytes: number;
}

async function measure(g: Group, round: number, s: Scenario): Promise<Run> {
  const lookups = await keyLookups(g.server);
  const logBytes = g.server.logBytes;
  const cpu = cpuSeconds(g.server.child.pid!);
  const r = await runGhz(ghz, `127.0.0.1:${g.server.port}`, s.call, LOAD);
  const cpuUsPerCall = ((cpuSeconds(g.server.child.pid!) - cpu) / r.calls) * 1e6;
  if (Object.keys(r.errors).length > 0) say(`${s.name}: server errors ${JSON.stringify(r.errors)}`);
  return {
    scenario: s.name,
    round,
    ...r,
    cpuUsPerCall,
    keyLookups: (await keyLookups(g.server)) - lookups,
    logBytes: g.server.logBytes - logBytes,
  };
}

/** The machine's 1-minute load average at the end of each measured round, by group: a shared machine's noise, on record. */
const loadByRound: Record<string, number[]> = {};

/** Round 0 warms up and is discarded; rounds 1..ROUNDS are measured, each scenario in turn. */
async function runRounds(g: Group): Promise<Run[]> {
  const runs: Run[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    say(`${g.name}: ${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`} (${g.scenarios.length} × ${DURATION})`);
    for (const s of g.scenarios) {
      const r = await measure(g, round, s);
      if (round > 0) runs.push(r);
    }
    if (round > 0) (loadByRound[g.name] ??= []).push(+loadavg()[0].toFixed(2));
  }
  return runs;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Spread {
  median: number;
  min: number;
  max: number;
  /** Half the min–max range, relative to the median, in % */
  spreadPct: number;
}

const spread = (xs: number[]): Spread => {
  const m = median(xs);
  const [min, max] = [Math.min(...xs), Math.max(...xs)];
  const r = (x: number, d = 3) => +x.toFixed(d);
  return { median: r(m), min: r(min), max: r(max), spreadPct: r(((max - min) / 2 / m) * 100, 1) };
};

/** Per scenario: absolute figures over the rounds, and its ratios to each floor taken within each round. */
function summarise(g: Group, runs: Run[]) {
  const [transport, interceptors] = g.scenarios.map((s) => s.name);
  const ofRound = (name: string, round: number) => runs.find((r) => r.scenario === name && r.round === round)!;
  const rounds = [...new Set(runs.map((r) => r.round))];
  return g.scenarios.map((s) => {
    const mine = runs.filter((r) => r.scenario === s.name);
    const ratio = (floor: string, f: (r: Run) => number) => rounds.map((n) => f(ofRound(s.name, n)) / f(ofRound(floor, n)));
    return {
      scenario: s.name,
      rps: spread(mine.map((r) => r.rps)),
      p50ms: spread(mine.map((r) => r.p50ms)),
      p99ms: spread(mine.map((r) => r.p99ms)),
      cpuUsPerCall: spread(mine.map((r) => r.cpuUsPerCall)),
      rpsVsTransport: spread(ratio(transport, (r) => r.rps)),
      p99VsTransport: spread(ratio(transport, (r) => r.p99ms)),
      rpsVsInterceptors: spread(ratio(interceptors, (r) => r.rps)),
      p99VsInterceptors: spread(ratio(interceptors, (r) => r.p99ms)),
      cpuVsTransport: spread(ratio(transport, (r) => r.cpuUsPerCall)),
      rpsRatioByRound: ratio(transport, (r) => r.rps).map((x) => +x.toFixed(3)),
      p99RatioByRound: ratio(transport, (r) => r.p99ms).map((x) => +x.toFixed(3)),
      cpuRatioByRound: ratio(transport, (r) => r.cpuUsPerCall).map((x) => +x.toFixed(3)),
      keyLookups: mine.reduce((n, r) => n + r.keyLookups, 0),
      logBytesPerCall: +(mine.reduce((n, r) => n + r.logBytes, 0) / mine.reduce((n, r) => n + r.calls, 0)).toFixed(1),
      serverErrors: mine.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0),
    };
  });
}

type Summary = ReturnType<typeof summarise>;

function print(group: string, rows: Summary): void {
  const mm = (s: Spread, d = 0) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
  const ratio = (s: Spread) => `${s.median.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)}, ±${s.spreadPct}%)`;
  say(`${group}: medians over ${ROUNDS} rounds (min–max); ratios per round, to the transport floor unless said`);
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      'req/s': mm(r.rps),
      'p99 ms': mm(r.p99ms, 1),
      '× req/s': ratio(r.rpsVsTransport),
      '× p99': ratio(r.p99VsTransport),
      '× interceptor floor req/s': r.rpsVsInterceptors.median.toFixed(3),
      'CPU µs/call': mm(r.cpuUsPerCall),
      '× CPU/call': r.cpuVsTransport.median.toFixed(3),
      'key lookups': r.keyLookups,
      'log B/call': r.logBytesPerCall,
    })),
  );
}

/**
 * The server's CPU under load of one call (--profile-of: cached VerifyKey, or the health Check or
 * the empty authenticated handler, the two floors): --cpu-prof over a warm-up and `seconds` of load.
 */
async function profile(uri: string, seconds: number): Promise<void> {
  const dir = join(RESULTS, 'profiles', opts.label);
  rmSync(dir, { recursive: true, force: true });
  const { server, addr } = await startServer(uri, {}, ['--cpu-prof', '--cpu-prof-dir', dir]);
  let calls: number;
  try {
    const [secret] = await createKeys(server, 1);
    const request = { key: secret, requiredScopes: ['read'] };
    const of = opts['profile-of'];
    const s =
      of === 'health' ? health() : of === 'empty' ? authenticatedEmpty(server, request) : verify(server, 'cached VerifyKey', request);
    say(`profile: warm-up ${DURATION}, then ${seconds} s of ${s.name}`);
    const warm = await runGhz(ghz, addr, s.call, LOAD);
    const r = await runGhz(ghz, addr, s.call, { ...LOAD, duration: `${seconds}s` });
    calls = warm.calls + r.calls;
    say(`profile: ${Math.round(r.rps)} req/s under the profiler`);
  } finally {
    server.child.kill('SIGTERM'); // a clean exit writes the profile
    await server.exited;
  }
  const file = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!,
  );
  const top = summariseProfile(file, 15);
  // Start-up is in the profile too: a slight overestimate.
  const usPerCall = +((top.busyMs * 1000) / calls).toFixed(1);
  say(`profile: busy ${top.busyMs} ms for ${calls} calls (${usPerCall} µs per call), idle ${top.idleMs} ms; by self time:`);
  console.table(top.frames);
  say('self time by file or package:');
  console.table(top.files);
  say('our functions (dist/) by inclusive time:');
  console.table(top.ours);
  const out = join(RESULTS, `profile-${opts.label}.json`);
  writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), of: opts['profile-of'], seconds, calls, usPerCall, profile: file, ...top }, null, 2),
  );
  say(`wrote ${out} (profile: ${file})`);
}

let ghz: string;

async function main(): Promise<void> {
  if (!opts['no-build']) {
    say('npm run build…');
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  mkdirSync(RESULTS, { recursive: true });
  ghz = ghzBinary(say);
  const db = process.env.MONGODB_URI ? undefined : await startEphemeralDatabase({ log: say });
  const uri = process.env.MONGODB_URI ?? db!.uri;
  say(`database: ${db?.description ?? uri}`);
  if (PIN) {
    spawnSync('taskset', ['-a', '-cp', OTHER_CPUS, String(process.pid)]);
    if (db?.pid) spawnSync('taskset', ['-a', '-cp', OTHER_CPUS, String(db.pid)]);
    say(`server pinned to core ${SERVER_CPUS}; ghz, this script and the database to cores ${OTHER_CPUS}`);
  } else {
    say('NOT PINNED (no taskset, or one core): server and ghz share the CPUs, expect wider spreads');
  }
  const started: ServiceProcess[] = [];
  try {
    if (opts.profile) {
      await profile(uri, Number(opts.profile));
      return;
    }
    const results: Record<string, Summary> = {};
    const load = [loadavg()[0]];
    const hot = await startServer(uri, {});
    started.push(hot.server);
    const [secret] = await createKeys(hot.server, 1);
    const unknown = generateSecret('sk', 'live');
    const hotGroup: Group = {
      name: 'hot path (cache on)',
      server: hot.server,
      scenarios: [
        health(),
        authenticatedEmpty(hot.server, { key: secret }),
        verify(hot.server, 'VerifyKey cached valid', { key: secret, requiredScopes: ['read'] }),
        verify(hot.server, 'VerifyKey malformed', { key: 'sk_live_not-a-real-key' }),
        verify(hot.server, 'VerifyKey one unknown key', { key: unknown }),
      ],
    };
    results[hotGroup.name] = summarise(hotGroup, await runRounds(hotGroup));
    hot.server.child.kill('SIGTERM');
    await hot.server.exited;

    if (opts.storage) {
      const COLD_KEYS = 50;
      const cold = await startServer(uri, { VERIFY_CACHE_MAX_ENTRIES: '0', ORG_KEY_LIMIT: String(COLD_KEYS) });
      started.push(cold.server);
      // Distinct keys, so concurrent misses cannot share one read: every verification reads storage.
      const keys = (await createKeys(cold.server, COLD_KEYS)).map((key) => ({ key }));
      const unknownKeys = Array.from({ length: 5000 }, () => ({ key: generateSecret('sk', 'live') }));
      const coldGroup: Group = {
        name: 'storage-bound (cache off)',
        server: cold.server,
        scenarios: [
          health(),
          authenticatedEmpty(cold.server, keys[0]),
          verify(cold.server, `VerifyKey cold (${COLD_KEYS} keys)`, keys),
          verify(cold.server, `VerifyKey unknown (${unknownKeys.length} distinct)`, unknownKeys),
        ],
      };
      results[coldGroup.name] = summarise(coldGroup, await runRounds(coldGroup));
      cold.server.child.kill('SIGTERM');
      await cold.server.exited;
    }

    load.push(loadavg()[0]);
    for (const [name, rows] of Object.entries(results)) print(name, rows);
    say(`machine load average (1 min) at start and end: ${load.map((l) => l.toFixed(2)).join(', ')} on ${cpus().length} cores`);
    const file = join(RESULTS, `${opts.label}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
          rounds: ROUNDS,
          load: LOAD,
          pinned: PIN,
          loadAverage: load,
          loadByRound,
          database: db?.description ?? 'MONGODB_URI',
          results,
        },
        null,
        2,
      ),
    );
    say(`wrote ${file}`);
  } finally {
    for (const s of started) s.kill();
    await db?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? String(err.stack) : String(err)}\n`);
  process.exit(1);
});
