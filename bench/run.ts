/**
 * `npm run bench [-- options]`: VerifyKey against the transport's floor, on the production build
 * run as production runs it (`node dist/main.js`, default settings: LOG_LEVEL=info, metrics on).
 *
 * Every scenario of a group is measured in interleaved rounds after one discarded warm-up round,
 * so no scenario pays for warming up the process; within a round the scenarios take turns in
 * slices of 0.25 s (A B C … A B C …), so that a change in what else runs on the machine falls on
 * all of them alike. A round's ratio is the median of its slices' ratios; the rounds' are
 * summarised as median and min–max, with the server's CPU time per call beside req/s and p99. Two
 * floors: grpc.health.v1.Health/Check, unauthenticated and outside our interceptors (the
 * transport), and an empty handler on VerifyKey's path, called with a service token (transport
 * and our interceptors; bench/authenticatedFloor.cjs adds it to the server without shipping it).
 * Both floors take grpc-js's own way; VerifyKey takes its lean one (src/transport/leanUnary.ts).
 * A second group, on a server with GRPC_LEAN_VERIFY=off, measures the same cached VerifyKey the
 * grpc-js way against that server's health Check.
 *
 * The server gets core 0 (taskset); h2load (bench/h2load.ts), this script and the
 * database get the others. h2load cannot read gRPC statuses: every run is checked against the
 * server's own counters, and a run that does not add up is an error, not a figure.
 *
 * Options: --rounds N (measured rounds, default 5), --duration 5s (per scenario and round),
 * --slices N (turns per round, default one per 0.25 s), --connections 4 and --streams 16 (HTTP/2
 * connections, and calls in flight on each), --rate N (calls/s cap), --quick (2 rounds of 2 s,
 * for development), --storage (also the storage-bound group: cache off, distinct keys),
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
import { VerifyKeyRequest } from '../src/gen/apikeys/v1/verify_service';
import { sampleValue, scrape } from '../test/support/prometheus';
import { startServiceProcess, type ServiceProcess } from '../test/support/serviceProcess';
import { summariseProfile } from './cpuprofile';
import { checkH2load, quantile, runH2load, type H2Call, type H2Load, type H2Result } from './h2load';
import { cpuSeconds } from './procStats';
import { formatRange, formatRatio, roundRatio, spread, SPREAD_LIMIT_PCT } from './rounds';
import { countsDelta, handledCalls, runProblem, serverCounts } from './serverCounts';

const say = (s: string) => process.stdout.write(`[bench] ${s}\n`);
const ROOT = join(__dirname, '..');
const RESULTS = join(ROOT, 'bench', 'results');

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    slices: { type: 'string' },
    connections: { type: 'string', default: '4' },
    streams: { type: 'string', default: '16' },
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
const SECONDS = Number(DURATION.replace(/s$/, ''));
/** Slices of 0.25 s unless said: the shorter, the closer in time the runs a ratio compares. */
const SLICES = Number(opts.slices ?? Math.max(1, Math.round(SECONDS / 0.25)));

/** The server alone on core 0, everything else on the other cores; nothing pinned on one core or without taskset. */
const PIN = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2;
const SERVER_CPUS = '0';
const OTHER_CPUS = `1-${cpus().length - 1}`;

const LOAD: H2Load = {
  seconds: SECONDS,
  connections: Number(opts.connections),
  streams: Number(opts.streams),
  rps: opts.rate ? Number(opts.rate) : undefined,
  cpus: PIN ? OTHER_CPUS : undefined,
};

interface Scenario {
  name: string;
  call: H2Call;
  /** The one VerifyKey result its calls must give (metric label); none for the floors. */
  verifyResult?: string;
}

/** A server (its settings) and the scenarios measured on it, one round after another. */
interface Group {
  /** Turns per round (`--slices`). */
  slices: number;
  name: string;
  server: ServiceProcess;
  scenarios: Scenario[];
}

const health = (): Scenario => ({
  name: 'health Check (transport floor)',
  // HealthCheckRequest { service: "" }: every field at its default, so no bytes.
  call: { path: '/grpc.health.v1.Health/Check', messages: [new Uint8Array()] },
});

const serviceToken = (s: ServiceProcess) => ({ authorization: `Bearer ${s.verifyToken}` });

const verifyRequest = (key: string, requiredScopes: string[] = []) => VerifyKeyRequest.encode({ key, requiredScopes }).finish();

/** bench/proto/bench.proto's EmptyRequest has VerifyKeyRequest's fields: the same bytes are sent. */
const authenticatedEmpty = (s: ServiceProcess, key: string): Scenario => ({
  name: 'empty handler, authenticated (interceptor floor)',
  call: { path: '/apikeys.v1.VerifyService/Empty', messages: [verifyRequest(key)], headers: serviceToken(s) },
});

const verify = (s: ServiceProcess, name: string, messages: Uint8Array[], verifyResult: string): Scenario => ({
  name,
  call: { path: '/apikeys.v1.VerifyService/VerifyKey', messages, headers: serviceToken(s) },
  verifyResult,
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
  return { server, origin: `http://127.0.0.1:${server.port}` };
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

/** The server's counts for `path`, and its key reads from storage (Verify cache misses and unconfirmed entries). */
async function counts(server: ServiceProcess, path: string) {
  let samples = await scrape(server.metricsPort!);
  // The calls h2load cut at the end of its run count once the server has finished them, and a
  // cut VerifyKey counts its result when its key read returns, maybe later: wait (10 s at most;
  // what is still missing then shows in the run's check) until every call started has both.
  const settled = () => {
    const started = sampleValue(samples, 'grpc_server_started_total', { grpc_method: 'VerifyKey' }) ?? 0;
    const verified = samples.filter((x) => x.name === 'apikeys_verify_results_total').reduce((a, x) => a + x.value, 0);
    return sampleValue(samples, 'grpc_server_in_flight') === 0 && verified >= started;
  };
  for (let waited = 0; !settled() && waited < 10_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    samples = await scrape(server.metricsPort!);
  }
  const n = (result: string) => sampleValue(samples, 'apikeys_verify_cache_lookups_total', { result }) ?? 0;
  return { ...serverCounts(samples, path), keyLookups: n('miss') + n('unconfirmed') };
}

/** The figures of one slice of a round, those ratios are taken of. */
interface SliceFigures {
  rps: number;
  p99ms: number;
  cpuUsPerCall: number;
}

/**
 * One scenario's share of a round: `--slices` runs of duration / slices each, taken in turn with
 * the other scenarios'. Its own figures are of all its slices together.
 */
interface Run extends SliceFigures {
  scenario: string;
  round: number;
  p50ms: number;
  /** Calls h2load counted answered. */
  calls: number;
  /**
   * The server's CPU time per call it completed (user + system, µs). Less sensitive than req/s to
   * other work on a shared machine: what that work takes from the server's core lowers req/s.
   */
  cpuUsPerCall: number;
  /**
   * The server's CPU time over the time h2load measured: ~1 when the server was the bottleneck and
   * had its core (a little more: the calls cut at the end, the counters read around each slice).
   */
  serverCoreShare: number;
  /** h2load's CPU time per answered call, µs: it must stay well below the server's. */
  clientCpuUsPerCall: number;
  keyLookups: number;
  logBytes: number;
  /** Why the figures are not to be trusted (the server's counts do not match the client's). */
  problem?: string;
  slices: SliceFigures[];
}

/** One h2load run, and what the server did meanwhile. */
interface Slice {
  r: H2Result;
  serverCpu: number;
  serverCalls: number;
  keyLookups: number;
  logBytes: number;
  problem?: string;
}

async function measure(g: Group, s: Scenario): Promise<Slice> {
  const { server } = g;
  const pid = server.child.pid!;
  const before = await counts(server, s.call.path);
  const logBytes = server.logBytes;
  const cpu = cpuSeconds(pid);
  const r = await runH2load(`http://127.0.0.1:${server.port}`, s.call, { ...LOAD, seconds: SECONDS / g.slices });
  const after = await counts(server, s.call.path);
  // After the calls h2load cut have finished, as they are counted (and one read of the counters, ~1 ms).
  const serverCpu = cpuSeconds(pid) - cpu;
  const d = countsDelta(before, after);
  return {
    r,
    serverCpu,
    serverCalls: handledCalls(d),
    keyLookups: after.keyLookups - before.keyLookups,
    logBytes: server.logBytes - logBytes,
    problem:
      (r.failed > 0 ? `h2load: ${r.failed} calls failed or answered with an HTTP error` : undefined) ?? runProblem(d, r, s.verifyResult),
  };
}

function combine(scenario: string, round: number, slices: Slice[]): Run {
  const sum = (f: (x: Slice) => number) => slices.reduce((a, x) => a + f(x), 0);
  const durations = slices.flatMap((x) => x.r.durationsUs);
  const calls = sum((x) => x.r.calls);
  return {
    scenario,
    round,
    rps: calls / sum((x) => x.r.seconds),
    p50ms: quantile(durations, 0.5) / 1000,
    p99ms: quantile(durations, 0.99) / 1000,
    calls,
    cpuUsPerCall: (sum((x) => x.serverCpu) / sum((x) => x.serverCalls)) * 1e6,
    serverCoreShare: sum((x) => x.serverCpu) / sum((x) => x.r.seconds),
    clientCpuUsPerCall: (sum((x) => x.r.cpuSeconds) / calls) * 1e6,
    keyLookups: sum((x) => x.keyLookups),
    logBytes: sum((x) => x.logBytes),
    problem: slices.find((x) => x.problem)?.problem,
    slices: slices.map((x) => ({
      rps: x.r.calls / x.r.seconds,
      p99ms: quantile(x.r.durationsUs, 0.99) / 1000,
      cpuUsPerCall: (x.serverCpu / x.serverCalls) * 1e6,
    })),
  };
}

/** The machine's 1-minute load average at the end of each measured round, by group: a shared machine's noise, on record. */
const loadByRound: Record<string, number[]> = {};

/** Runs whose counts did not add up: their rounds give no figures. */
const errors: { group: string; round: number; scenario: string; problem: string }[] = [];

/**
 * Round 0 warms up and is discarded; rounds 1..ROUNDS are measured. Within a round, the scenarios
 * take turns `--slices` times, so that a change in what else runs on the machine during the round
 * falls on all of them alike. A round with a run in error is left out whole, as its ratios would be.
 */
async function runRounds(g: Group): Promise<Run[]> {
  const runs: Run[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const what = `${g.scenarios.length} × ${g.slices} × ${SECONDS / g.slices} s`;
    say(`${g.name}: ${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`} (${what})`);
    const slices = g.scenarios.map((): Slice[] => []);
    for (let i = 0; i < g.slices; i++) for (const [j, s] of g.scenarios.entries()) slices[j].push(await measure(g, s));
    const mine = g.scenarios.map((s, j) => combine(s.name, round, slices[j]));
    for (const r of mine) {
      if (r.problem) {
        say(`ERROR in round ${round}, ${r.scenario}: ${r.problem}`);
        errors.push({ group: g.name, round, scenario: r.scenario, problem: r.problem });
      }
    }
    if (round > 0 && !mine.some((r) => r.problem)) {
      runs.push(...mine);
      (loadByRound[g.name] ??= []).push(+loadavg()[0].toFixed(2));
    }
  }
  if (runs.length === 0) throw new Error(`${g.name}: no round without errors`);
  return runs;
}

/** Per scenario: absolute figures over the rounds, and its ratios to each floor taken within each round. */
function summarise(g: Group, runs: Run[]) {
  const [transport, interceptors] = g.scenarios.map((s) => s.name);
  const ofRound = (name: string, round: number) => runs.find((r) => r.scenario === name && r.round === round)!;
  const rounds = [...new Set(runs.map((r) => r.round))];
  return g.scenarios.map((s) => {
    const mine = runs.filter((r) => r.scenario === s.name);
    const ratio = (floor: string, f: (x: SliceFigures) => number) =>
      rounds.map((n) => roundRatio(ofRound(s.name, n).slices, ofRound(floor, n).slices, f));
    return {
      scenario: s.name,
      rps: spread(mine.map((r) => r.rps)),
      p50ms: spread(mine.map((r) => r.p50ms)),
      p99ms: spread(mine.map((r) => r.p99ms)),
      cpuUsPerCall: spread(mine.map((r) => r.cpuUsPerCall)),
      h2loadCpuUsPerCall: spread(mine.map((r) => r.clientCpuUsPerCall)),
      serverCoreShare: spread(mine.map((r) => r.serverCoreShare)),
      rpsVsTransport: spread(ratio(transport, (x) => x.rps)),
      p99VsTransport: spread(ratio(transport, (x) => x.p99ms)),
      rpsVsInterceptors: spread(ratio(interceptors, (x) => x.rps)),
      p99VsInterceptors: spread(ratio(interceptors, (x) => x.p99ms)),
      cpuVsTransport: spread(ratio(transport, (x) => x.cpuUsPerCall)),
      rpsRatioByRound: ratio(transport, (x) => x.rps).map((x) => +x.toFixed(3)),
      p99RatioByRound: ratio(transport, (x) => x.p99ms).map((x) => +x.toFixed(3)),
      cpuRatioByRound: ratio(transport, (x) => x.cpuUsPerCall).map((x) => +x.toFixed(3)),
      keyLookups: mine.reduce((n, r) => n + r.keyLookups, 0),
      logBytesPerCall: +(mine.reduce((n, r) => n + r.logBytes, 0) / mine.reduce((n, r) => n + r.calls, 0)).toFixed(1),
    };
  });
}

type Summary = ReturnType<typeof summarise>;

function print(group: string, rows: Summary): void {
  say(`${group}: medians over ${rows[0].rpsRatioByRound.length} rounds (min–max); ratios per round, to the transport floor unless said`);
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      'req/s': formatRange(r.rps),
      'p99 ms': formatRange(r.p99ms, 1),
      '× req/s': formatRatio(r.rpsVsTransport),
      '× p99': formatRatio(r.p99VsTransport),
      '× interceptor floor req/s': r.rpsVsInterceptors.median.toFixed(3),
      'CPU µs/call': formatRange(r.cpuUsPerCall),
      '× CPU/call': formatRatio(r.cpuVsTransport),
      'server core %': (r.serverCoreShare.median * 100).toFixed(0),
      'h2load µs/call': r.h2loadCpuUsPerCall.median.toFixed(1),
      'key lookups': r.keyLookups,
      'log B/call': r.logBytesPerCall,
    })),
  );
}

/** The spread of each scenario's req/s and CPU-per-call ratios to the transport floor; loud when above the limit. */
function checkSpreads(group: string, rows: Summary): string[] {
  const over: string[] = [];
  for (const r of rows.slice(1)) {
    say(`${group}, ${r.scenario}: × req/s ±${r.rpsVsTransport.spreadPct}%, × CPU/call ±${r.cpuVsTransport.spreadPct}% over the rounds`);
    if (r.rpsVsTransport.spreadPct > SPREAD_LIMIT_PCT) over.push(`${r.scenario} × req/s ±${r.rpsVsTransport.spreadPct}%`);
    if (r.cpuVsTransport.spreadPct > SPREAD_LIMIT_PCT) over.push(`${r.scenario} × CPU/call ±${r.cpuVsTransport.spreadPct}%`);
  }
  return over;
}

/**
 * The server's CPU under load of one call (--profile-of: cached VerifyKey, or the health Check or
 * the empty authenticated handler, the two floors): --cpu-prof over a warm-up and `seconds` of load.
 */
async function profile(uri: string, seconds: number): Promise<void> {
  const dir = join(RESULTS, 'profiles', opts.label);
  rmSync(dir, { recursive: true, force: true });
  const { server, origin } = await startServer(uri, {}, ['--cpu-prof', '--cpu-prof-dir', dir]);
  let calls: number;
  try {
    const [secret] = await createKeys(server, 1);
    const of = opts['profile-of'];
    const s =
      of === 'health'
        ? health()
        : of === 'empty'
          ? authenticatedEmpty(server, secret)
          : verify(server, 'cached VerifyKey', [verifyRequest(secret, ['read'])], 'VALID');
    say(`profile: warm-up ${DURATION}, then ${seconds} s of ${s.name}`);
    await runH2load(origin, s.call, LOAD);
    const r = await runH2load(origin, s.call, { ...LOAD, seconds });
    // Every call the server completed, those h2load cut at the end of a run included.
    calls = handledCalls(serverCounts(await scrape(server.metricsPort!), s.call.path));
    say(`profile: ${Math.round(r.calls / r.seconds)} req/s under the profiler`);
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

async function main(): Promise<void> {
  if (!opts['no-build']) {
    say('npm run build…');
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  mkdirSync(RESULTS, { recursive: true });
  say(checkH2load());
  const db = process.env.MONGODB_URI ? undefined : await startEphemeralDatabase({ log: say });
  const uri = process.env.MONGODB_URI ?? db!.uri;
  say(`database: ${db?.description ?? uri}`);
  if (PIN) {
    spawnSync('taskset', ['-a', '-cp', OTHER_CPUS, String(process.pid)]);
    if (db?.pid) spawnSync('taskset', ['-a', '-cp', OTHER_CPUS, String(db.pid)]);
    say(`server pinned to core ${SERVER_CPUS}; h2load, this script and the database to cores ${OTHER_CPUS}`);
  } else {
    say('NOT PINNED (no taskset, or one core): server and h2load share the CPUs, expect wider spreads');
  }
  const started: ServiceProcess[] = [];
  try {
    if (opts.profile) {
      await profile(uri, Number(opts.profile));
      return;
    }
    const results: Record<string, Summary> = {};
    /** Every measured round's figures, slice by slice: for a second look at the noise. */
    const runsOf: Record<string, Run[]> = {};
    const load = [loadavg()[0]];
    const hot = await startServer(uri, {});
    started.push(hot.server);
    const [secret] = await createKeys(hot.server, 1);
    const unknown = generateSecret('sk', 'live');
    const hotGroup: Group = {
      slices: SLICES,
      name: 'hot path (cache on)',
      server: hot.server,
      scenarios: [
        health(),
        authenticatedEmpty(hot.server, secret),
        verify(hot.server, 'VerifyKey cached valid', [verifyRequest(secret, ['read'])], 'VALID'),
        verify(hot.server, 'VerifyKey malformed', [verifyRequest('sk_live_not-a-real-key')], 'MALFORMED'),
        verify(hot.server, 'VerifyKey one unknown key', [verifyRequest(unknown)], 'NOT_FOUND'),
      ],
    };
    runsOf[hotGroup.name] = await runRounds(hotGroup);
    results[hotGroup.name] = summarise(hotGroup, runsOf[hotGroup.name]);
    hot.server.child.kill('SIGTERM');
    await hot.server.exited;

    // The same cached VerifyKey through grpc-js's own per-call machinery (docs/decisions/lean-verify-path.md),
    // on a server of its own: a second server in the same turns would leave work of its own (its
    // collector, its timers) on the server's core in the next scenario's slices.
    const viaGrpcJs = await startServer(uri, { GRPC_LEAN_VERIFY: 'off' });
    started.push(viaGrpcJs.server);
    const [viaGrpcJsSecret] = await createKeys(viaGrpcJs.server, 1);
    const grpcJsGroup: Group = {
      slices: SLICES,
      name: 'GRPC_LEAN_VERIFY=off (VerifyKey the grpc-js way)',
      server: viaGrpcJs.server,
      scenarios: [health(), verify(viaGrpcJs.server, 'VerifyKey cached valid', [verifyRequest(viaGrpcJsSecret, ['read'])], 'VALID')],
    };
    runsOf[grpcJsGroup.name] = await runRounds(grpcJsGroup);
    results[grpcJsGroup.name] = summarise(grpcJsGroup, runsOf[grpcJsGroup.name]);
    viaGrpcJs.server.child.kill('SIGTERM');
    await viaGrpcJs.server.exited;

    if (opts.storage) {
      const COLD_KEYS = 50;
      const cold = await startServer(uri, {
        VERIFY_CACHE_MAX_ENTRIES: '0',
        VERIFY_NEGATIVE_CACHE_MAX_ENTRIES: '0',
        ORG_KEY_LIMIT: String(COLD_KEYS),
      });
      started.push(cold.server);
      // Distinct keys, one call in flight each (bench/h2load.ts), so concurrent misses cannot
      // share one read: every verification reads storage.
      const keys = await createKeys(cold.server, COLD_KEYS);
      const unknownKeys = Array.from({ length: COLD_KEYS }, () => verifyRequest(generateSecret('sk', 'live')));
      const coldGroup: Group = {
        // Calls here take hundreds of milliseconds, and each key has its own h2load: one run per round.
        slices: 1,
        name: 'storage-bound (cache off)',
        server: cold.server,
        scenarios: [
          health(),
          authenticatedEmpty(cold.server, keys[0]),
          verify(
            cold.server,
            `VerifyKey cold (${COLD_KEYS} keys)`,
            keys.map((key) => verifyRequest(key)),
            'VALID',
          ),
          verify(cold.server, `VerifyKey unknown (${COLD_KEYS} distinct)`, unknownKeys, 'NOT_FOUND'),
        ],
      };
      runsOf[coldGroup.name] = await runRounds(coldGroup);
      results[coldGroup.name] = summarise(coldGroup, runsOf[coldGroup.name]);
      cold.server.child.kill('SIGTERM');
      await cold.server.exited;
    }

    load.push(loadavg()[0]);
    for (const [name, rows] of Object.entries(results)) print(name, rows);
    say(`machine load average (1 min) at start and end: ${load.map((l) => l.toFixed(2)).join(', ')} on ${cpus().length} cores`);
    // The storage-bound group measures the database: only the hot path is held to the limit.
    const over = checkSpreads(hotGroup.name, results[hotGroup.name]);
    if (over.length > 0) say(`!!! SPREAD ABOVE ±${SPREAD_LIMIT_PCT}%: ${over.join('; ')}: these ratios are not to be trusted`);
    for (const e of errors) say(`!!! ERROR (round ${e.round} left out): ${e.group}, ${e.scenario}: ${e.problem}`);
    if (errors.length > 0) process.exitCode = 1;
    const file = join(RESULTS, `${opts.label}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
          rounds: ROUNDS,
          slices: SLICES,
          load: LOAD,
          pinned: PIN,
          loadAverage: load,
          loadByRound,
          errors,
          spreadsAboveLimit: over,
          database: db?.description ?? 'MONGODB_URI',
          results,
          runs: runsOf,
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
