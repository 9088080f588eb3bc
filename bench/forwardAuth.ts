/**
 * `npx tsx bench/forwardAuth.ts`: the forward-auth endpoint (a valid, cached key) against an empty
 * handler, against one answering the same headers without verifying, and against one answering
 * them after hashing the presented key (what no verification can skip), each on its own HTTP
 * server with the same settings (forwardAuthServer) in this process, pinned to core 0. The load is
 * h2load (bench/h2load.ts) over HTTP/1.1 on the other cores: BENCH_FA_CONNECTIONS (default 32)
 * kept-alive connections, one request in flight on each (no pipelining), closed loop. As in
 * `npm run bench` (bench/rounds.ts): one warm-up round, then BENCH_FA_ROUNDS (default 5) rounds of
 * BENCH_FA_SECONDS (default 5) per scenario, in which the scenarios take turns in slices of 0.25 s
 * (BENCH_FA_SLICES per round); a round's ratio is the median of its slices' ratios, the rounds'
 * are summarised by median and min–max, and a spread (half the range over the median) above ±5 %
 * is reported loudly. Beside req/s, p50 and p99: this process's CPU time per request (the
 * servers', over the time h2load ran), its core share, and h2load's CPU time per request.
 * Every slice is checked: all answers 2xx, and the app's VerifyKey results grown by VALID only, as
 * many as the forward-auth requests (none for the other two). A round with a slice that does not
 * add up is an error, left out, and the bench exits non-zero.
 * Writes bench/results/forwardAuth.json. MONGODB_URI, else an ephemeral FerretDB.
 *
 * `--profile`: instead of the rounds, a CPU profile of this process (the servers) under one
 * BENCH_FA_SECONDS run of each scenario after the warm-up, summarised by bench/cpuprofile.ts with
 * self time per request, so forward auth's frames can be read against the empty handler's.
 * Profiles in bench/results/profiles/.
 *
 * `--handler`: instead of the rounds, forward auth's request handler alone, called in a loop with
 * the bench's request (a stand-in request object carrying the headers Node would have parsed, and a
 * response that discards what it is sent): the CPU time per call of verifying and choosing the
 * answer, without Node's HTTP work, which a machine shared with other work makes noisy.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { startApp, type RunningApp } from '../src/app';
import { bearer, connectClients } from '../src/client/promiseClient';
import { loadConfig } from '../src/config/config';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { createLogger } from '../src/logging/logger';
import { hashSecret } from '../src/domain/keyFormat';
import { forwardAuthServer } from '../src/transport/http/forwardAuth';
import { summariseProfile } from './cpuprofile';
import { checkH2load, quantile, runH2load, type H2Call, type H2Load, type H2Result } from './h2load';
import { formatRange, formatRatio, roundRatio, spread, SPREAD_LIMIT_PCT } from './rounds';
import { httpRunProblem, minus } from './serverCounts';

const ROOT = join(__dirname, '..');
const ROUNDS = Number(process.env.BENCH_FA_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_FA_SECONDS ?? 5);
/** Slices of 0.25 s unless said: the shorter, the closer in time the runs a ratio compares. */
const SLICES = Number(process.env.BENCH_FA_SLICES ?? Math.max(1, Math.round(SECONDS / 0.25)));
const CONNECTIONS = Number(process.env.BENCH_FA_CONNECTIONS ?? 32);
const PROFILE = process.argv.includes('--profile');
const HANDLER_ONLY = process.argv.includes('--handler');
const say = (s: string) => process.stdout.write(`[bench] ${s}\n`);
// As bench/run.ts: the servers (this process) on core 0, h2load and the database on the others.
const PIN = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2;
const OTHER_CPUS = `1-${cpus().length - 1}`;
const LOAD: H2Load = { seconds: SECONDS / SLICES, connections: CONNECTIONS, streams: 1, h1: true, cpus: PIN ? OTHER_CPUS : undefined };

const NAMES = ['empty', 'sameAnswer', 'hashedAnswer', 'forwardAuth'] as const;
type Name = (typeof NAMES)[number];

/** The figures of one slice, those ratios are taken of. */
interface SliceFigures {
  rps: number;
  p99ms: number;
  /** This process's CPU time (user + system) per answered request, µs. */
  cpuUsPerRequest: number;
}

/** One h2load run against one scenario, and this process's CPU time meanwhile. */
interface Slice {
  r: H2Result;
  cpuSeconds: number;
  /** The Verify cache's lookups meanwhile, by result (hit, miss, unconfirmed). */
  lookups: Record<string, number>;
  problem?: string;
}

/** One scenario's share of a round: its slices, and its figures over all of them together. */
interface Run extends SliceFigures {
  p50ms: number;
  requests: number;
  /** This process's CPU time over the time h2load measured: ~1 when the servers' core is saturated. */
  coreShare: number;
  /** h2load's CPU time per answered request, µs, and the user time of it (the rest is loopback TCP's, in the kernel). */
  h2loadCpuUsPerRequest: number;
  h2loadUserCpuUsPerRequest: number;
  /** The Verify cache's lookups over the slices, by result: a cached key re-read from storage is "unconfirmed". */
  cacheLookups: Record<string, number>;
  problem?: string;
  slices: SliceFigures[];
}

/** A labelled counter of the app's, by its one label's value. */
async function counter(app: RunningApp, name: string, label: string): Promise<Record<string, number>> {
  const { values } = await app.metrics.registry.getSingleMetric(name)!.get();
  return Object.fromEntries(values.map((v) => [String(v.labels[label]), v.value]));
}

/** The app's VerifyKey results so far, by code (forward auth counts its answers there too). */
const verifyResults = (app: RunningApp) => counter(app, 'apikeys_verify_results_total', 'code');
/** The Verify cache's lookups so far: hit, miss, unconfirmed (a cached key re-read: the change-log poll fell behind). */
const cacheLookups = (app: RunningApp) => counter(app, 'apikeys_verify_cache_lookups_total', 'result');

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(app: RunningApp, port: number, call: H2Call, verifies: boolean): Promise<Slice> {
  const [before, lookupsBefore] = [await verifyResults(app), await cacheLookups(app)];
  const cpu = process.cpuUsage();
  let used = cpu;
  const r = await runH2load(`http://127.0.0.1:${port}`, call, { ...LOAD, ended: () => (used = process.cpuUsage(cpu)) });
  // Requests h2load cut at the end are still answered, some later: a cached key is re-read from
  // storage when the change-log poll falls behind, which it does on a saturated core. Wait (1 s at
  // most) until every request started has its result, so none is counted in the next slice.
  let grew = minus(await verifyResults(app), before);
  for (let waited = 0; verifies && (grew.VALID ?? 0) < r.started && waited < 1000; waited += 5) {
    await pause(5);
    grew = minus(await verifyResults(app), before);
  }
  const lookups = minus(await cacheLookups(app), lookupsBefore);
  return { r, cpuSeconds: (used.user + used.system) / 1e6, lookups, problem: httpRunProblem(r, grew, verifies) };
}

function combine(slices: Slice[]): Run {
  const sum = (f: (x: Slice) => number) => slices.reduce((a, x) => a + f(x), 0);
  const durations = slices.flatMap((x) => x.r.durationsUs);
  const requests = sum((x) => x.r.calls);
  return {
    rps: requests / sum((x) => x.r.seconds),
    p50ms: quantile(durations, 0.5) / 1000,
    p99ms: quantile(durations, 0.99) / 1000,
    cpuUsPerRequest: (sum((x) => x.cpuSeconds) / requests) * 1e6,
    requests,
    coreShare: sum((x) => x.cpuSeconds) / sum((x) => x.r.seconds),
    h2loadCpuUsPerRequest: (sum((x) => x.r.cpuSeconds) / requests) * 1e6,
    h2loadUserCpuUsPerRequest: (sum((x) => x.r.userCpuSeconds) / requests) * 1e6,
    cacheLookups: slices.reduce<Record<string, number>>((a, x) => {
      for (const [k, n] of Object.entries(x.lookups)) a[k] = (a[k] ?? 0) + n;
      return a;
    }, {}),
    problem: slices.find((x) => x.problem)?.problem,
    slices: slices.map((x) => ({
      rps: x.r.calls / x.r.seconds,
      p99ms: quantile(x.r.durationsUs, 0.99) / 1000,
      cpuUsPerRequest: (x.cpuSeconds / x.r.calls) * 1e6,
    })),
  };
}

async function main(): Promise<void> {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  if (!HANDLER_ONLY) say(checkH2load());
  const db = process.env.MONGODB_URI ? undefined : await startEphemeralDatabase({ log: say });
  const uri = process.env.MONGODB_URI ?? db!.uri;
  if (PIN) {
    spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)]);
    if (db?.pid) spawnSync('taskset', ['-a', '-cp', OTHER_CPUS, String(db.pid)]);
  }
  const jwtSecret = randomBytes(32).toString('base64url');
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    HTTP_AUTH_ADDR: '127.0.0.1:0',
    METRICS_ADDR: 'off',
    MONGODB_URI: uri,
    MONGODB_DATABASE: `bench_fa_${Date.now()}`,
    AUTH_JWT_SECRET: jwtSecret,
    VERIFY_TOKENS: verifyToken,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
  });
  const app = await startApp(config, createLogger(config.logLevel));
  const clients = connectClients(`127.0.0.1:${app.port}`);
  const admin = bearer(await mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
  const { secret } = await clients.keys.createKey({ name: 'bench', scopes: ['read', 'write'] }, admin);
  clients.close();

  // The ceilings, on servers with the same settings: a handler that answers 200 and does nothing
  // else, and one that answers what forward auth answers a valid key, without verifying.
  const empty = await listen((_req, res) => res.writeHead(200, ['content-length', '0']).end());
  const answer = [
    'x-key-id',
    'key_01jabcdefghjkmnpqrstvwxyz0',
    'x-org-id',
    'org_01jabcdefghjkmnpqrstvwxyz0',
    'x-key-scopes',
    'read,write',
    'cache-control',
    'no-store',
    'content-length',
    '0',
  ];
  const sameAnswer = await listen((_req, res) => res.writeHead(200, answer).end());
  // The same answer after the one step no verification can skip: hashing the presented key, which
  // storage and the cache know keys by. Forward auth's cost above it is its own.
  const hashedAnswer = await listen((req, res) => {
    const key = req.headers['x-api-key'];
    res.writeHead(typeof key === 'string' && hashSecret(key).length === 64 ? 200 : 500, answer).end();
  });
  const headers = { 'x-service-token': verifyToken, 'x-api-key': secret, 'x-required-scopes': 'read' };
  const call: H2Call = { path: '/authorize', headers };
  const ports: Record<Name, number> = {
    empty: port(empty),
    sameAnswer: port(sameAnswer),
    hashedAnswer: port(hashedAnswer),
    forwardAuth: app.httpAuthPort!,
  };
  const stop = async () => {
    await Promise.all([empty, sameAnswer, hashedAnswer].map((server) => new Promise((r) => server.close(r))));
    await app.stop();
    await db?.stop();
  };

  try {
    if (HANDLER_ONLY) {
      await handlerAlone(app.httpAuthPort!, headers);
      return;
    }
    if (PROFILE) {
      for (const name of NAMES) await runH2load(`http://127.0.0.1:${ports[name]}`, call, { ...LOAD, seconds: 1 });
      for (const name of NAMES)
        await profileRun(name, () => runH2load(`http://127.0.0.1:${ports[name]}`, call, { ...LOAD, seconds: SECONDS }));
      return;
    }
    say(
      `one warm-up round, then ${ROUNDS} rounds of ${NAMES.length} × ${SLICES} × ${SECONDS / SLICES} s, ` +
        `h2load --h1, ${CONNECTIONS} connections × 1 request; ${PIN ? `servers on core 0, h2load and the database on ${OTHER_CPUS}` : 'NOT PINNED'}`,
    );
    const load = [loadavg()[0]];
    const rounds: Record<Name, Run>[] = [];
    const loadByRound: number[] = [];
    const errors: { round: number; scenario: Name; problem: string }[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      const slices: Record<Name, Slice[]> = { empty: [], sameAnswer: [], hashedAnswer: [], forwardAuth: [] };
      for (let i = 0; i < SLICES; i++) {
        for (const name of NAMES) slices[name].push(await measure(app, ports[name], call, name === 'forwardAuth'));
      }
      const runs = Object.fromEntries(NAMES.map((n) => [n, combine(slices[n])])) as Record<Name, Run>;
      for (const name of NAMES) {
        const problem = runs[name].problem;
        if (problem) {
          say(`ERROR in round ${round}, ${name}: ${problem}`);
          errors.push({ round, scenario: name, problem });
        }
      }
      const f = runs.forwardAuth;
      say(
        `${round === 0 ? 'warm-up' : `round ${round}/${ROUNDS}`}: ` +
          NAMES.map((n) => `${n} ${runs[n].rps.toFixed(0)} req/s ${runs[n].cpuUsPerRequest.toFixed(1)} µs`).join(', ') +
          `; forward auth ÷ empty ${roundRatio(f.slices, runs.empty.slices, (x) => x.rps).toFixed(3)}` +
          `; its cache lookups ${JSON.stringify(f.cacheLookups)}` +
          (NAMES.some((n) => runs[n].problem) ? ' — ERROR, left out' : ''),
      );
      if (round > 0 && !NAMES.some((n) => runs[n].problem)) {
        rounds.push(runs);
        loadByRound.push(+loadavg()[0].toFixed(2));
      }
    }
    load.push(loadavg()[0]);
    if (rounds.length === 0) throw new Error('no round without errors');

    const of = (n: Name, f: (r: Run) => number) => spread(rounds.map((r) => f(r[n])));
    /** `mine` ÷ `ceiling` per round (forward auth's, unless said). */
    const ratio = (ceiling: Name, f: (x: SliceFigures) => number, mine: Name = 'forwardAuth') =>
      rounds.map((r) => roundRatio(r[mine].slices, r[ceiling].slices, f));
    const figures = (n: Name) => ({
      rps: of(n, (r) => r.rps),
      p50ms: of(n, (r) => r.p50ms),
      p99ms: of(n, (r) => r.p99ms),
      cpuUsPerRequest: of(n, (r) => r.cpuUsPerRequest),
      coreShare: of(n, (r) => r.coreShare),
      h2loadCpuUsPerRequest: of(n, (r) => r.h2loadCpuUsPerRequest),
      h2loadUserCpuUsPerRequest: of(n, (r) => r.h2loadUserCpuUsPerRequest),
    });
    const scenarios = Object.fromEntries(NAMES.map((n) => [n, figures(n)])) as Record<Name, ReturnType<typeof figures>>;
    const ratios = {
      rpsToEmpty: spread(ratio('empty', (x) => x.rps)),
      rpsToSameAnswer: spread(ratio('sameAnswer', (x) => x.rps)),
      rpsToHashedAnswer: spread(ratio('hashedAnswer', (x) => x.rps)),
      cpuToEmpty: spread(ratio('empty', (x) => x.cpuUsPerRequest)),
      cpuToSameAnswer: spread(ratio('sameAnswer', (x) => x.cpuUsPerRequest)),
      p99ToEmpty: spread(ratio('empty', (x) => x.p99ms)),
      hashedAnswerRpsToEmpty: spread(ratio('empty', (x) => x.rps, 'hashedAnswer')),
    };
    say(`medians over ${rounds.length} rounds (min–max)`);
    console.table(
      Object.fromEntries(
        NAMES.map((n) => {
          const s = scenarios[n];
          return [
            n,
            {
              'req/s': formatRange(s.rps),
              'p50 ms': formatRange(s.p50ms, 2),
              'p99 ms': formatRange(s.p99ms, 2),
              'CPU µs/req': formatRange(s.cpuUsPerRequest, 1),
              'core %': (s.coreShare.median * 100).toFixed(0),
              'h2load µs/req (user)': `${s.h2loadCpuUsPerRequest.median.toFixed(1)} (${s.h2loadUserCpuUsPerRequest.median.toFixed(1)})`,
            },
          ];
        }),
      ),
    );
    say('forward auth ÷ ceiling, per round (median of its slice ratios); min–max and spread over the rounds:');
    for (const [k, v] of Object.entries(ratios)) say(`  ${k}: ${formatRatio(v)}`);
    say(`machine load average (1 min) at start and end: ${load.map((l) => l.toFixed(2)).join(', ')} on ${cpus().length} cores`);
    const over = Object.entries(ratios)
      .filter(([k, v]) => !k.startsWith('p99') && v.spreadPct > SPREAD_LIMIT_PCT)
      .map(([k, v]) => `${k} ±${v.spreadPct}%`);
    if (over.length > 0) say(`!!! SPREAD ABOVE ±${SPREAD_LIMIT_PCT}%: ${over.join('; ')}: these ratios are not to be trusted`);
    for (const e of errors) say(`!!! ERROR (round ${e.round} left out): ${e.scenario}: ${e.problem}`);
    if (errors.length > 0) process.exitCode = 1;
    const file = join(ROOT, 'bench', 'results', 'forwardAuth.json');
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          method: { rounds: ROUNDS, secondsPerScenarioAndRound: SECONDS, slices: SLICES, h2load: LOAD, pinned: PIN },
          machineLoadAverage: { startAndEnd: load, byRound: loadByRound },
          errors,
          spreadsAboveLimit: over,
          scenarios,
          forwardAuthRatios: ratios,
          runs: rounds,
        },
        null,
        2,
      ),
    );
    say(`wrote ${file}`);
  } finally {
    await stop();
  }
}

/**
 * The forward-auth endpoint's request listener, called synchronously (a cached key answers without
 * a promise): rounds of 20 000 calls, each followed by a pause so the change-log poll runs and the
 * key stays trusted (VERIFY_REVOCATION_BOUND_MS); CPU µs per call over the rounds after the first.
 */
async function handlerAlone(port: number, headers: Record<string, string>): Promise<void> {
  // The app does not hand its HTTP server out; the bench finds it among the process's listening handles.
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const server = handles.find(
    (h): h is Server => h instanceof NetServer && h.listening && (h.address() as { port: number } | null)?.port === port,
  );
  const listener = server!.listeners('request')[0] as RequestListener;
  const socket = {};
  // Each request brings its headers as new strings (V8 caches a string's hash in the string, so
  // reusing one would make every lookup by it cheaper than a real request's).
  const raw = Object.entries({ host: '127.0.0.1', ...headers }).map(([k, v]) => [k, Buffer.from(v, 'latin1')] as const);
  const request = () =>
    ({
      url: '/authorize',
      method: 'GET',
      headers: Object.fromEntries(raw.map(([k, v]) => [k, v.toString('latin1')])),
      socket,
    }) as unknown as IncomingMessage;
  let allowed = 0;
  const res = {
    writeHead(code: number) {
      if (code === 200) allowed++;
      return res;
    },
    end() {},
  } as unknown as ServerResponse;
  listener(request(), res); // the first call reads the key and caches it
  await pause(200);
  const [CALLS, HANDLER_ROUNDS] = [20_000, 30];
  /** CPU µs per call of `call`, over rounds after a warm-up one, each followed by a pause for the poll. */
  const measure = async (call: () => void) => {
    const perCall: number[] = [];
    for (let round = 0; round <= HANDLER_ROUNDS; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) call();
      const used = process.cpuUsage(cpu);
      if (round > 0) perCall.push((used.user + used.system) / CALLS);
      await pause(20);
    }
    return spread(perCall);
  };
  const building = await measure(request);
  allowed = 0;
  const handling = await measure(() => listener(request(), res));
  if (allowed !== CALLS * (HANDLER_ROUNDS + 1)) throw new Error('some calls were not answered 200 at once');
  say(`building the request alone, CPU µs per call: ${JSON.stringify(building)}`);
  say(`forward auth's handler, the request built included, CPU µs per call: ${JSON.stringify(handling)}`);
}

/** One run of `name` under V8's sampling profiler: its frames by self time, in µs per request. */
async function profileRun(name: string, run: () => Promise<H2Result>): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  const r = await run();
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  const dir = join(ROOT, 'bench', 'results', 'profiles');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `forwardAuth-${name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const s = summariseProfile(file, 25);
  // Spawning h2load and reading its log are in the profile too: a slight overestimate, alike for all.
  const perRequest = (ms: number) => +((ms * 1000) / r.calls).toFixed(2);
  say(`profile ${name}: ${(r.calls / r.seconds).toFixed(0)} req/s, busy ${perRequest(s.busyMs)} µs per request; by self time (${file}):`);
  console.table(s.frames.map((f) => ({ function: f.function, where: f.where, 'µs/req': perRequest(f.ms), pct: f.pct })));
  console.table(s.files.map((f) => ({ file: f.file, 'µs/req': perRequest(f.ms), pct: f.pct })));
  console.table(s.ours.map((f) => ({ function: f.function, where: f.where, 'µs/req inclusive': perRequest(f.ms) })));
}

async function listen(handler: RequestListener): Promise<Server> {
  const server = forwardAuthServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const port = (server: Server) => (server.address() as { port: number }).port;

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
