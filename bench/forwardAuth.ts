/**
 * `npx tsx bench/forwardAuth.ts`: the forward-auth endpoint (a valid, cached key) against an empty
 * handler, and against one answering the same headers without verifying, each on an HTTP server
 * with the same settings (forwardAuthServer) in the same process, under the same closed-loop load:
 * a separate Node process holding BENCH_FA_CONCURRENCY (default 32) kept-alive connections, each
 * sending its next request as soon as the last one is answered. Rounds alternate A B C A B C …
 * (BENCH_FA_ROUNDS of each, default 6, BENCH_FA_SECONDS long, default 3) after one warm-up round of
 * each, so drift on a shared machine hits all alike. Reports medians and the spread (min–max) of
 * requests/s, p50 and p99, and this process's CPU time per request.
 * Writes bench/results/forwardAuth.json. MONGODB_URI, else an ephemeral FerretDB.
 *
 * `--profile`: instead of the rounds, a CPU profile of this process (the servers) under one round of
 * each scenario after the warm-up, summarised by bench/cpuprofile.ts with self time per request, so
 * forward auth's frames can be read against the empty handler's. Profiles in bench/results/profiles/.
 *
 * `--handler`: instead of the rounds, forward auth's request handler alone, called in a loop with
 * the bench's request (a stand-in request object carrying the headers Node would have parsed, and a
 * response that discards what it is sent): the CPU time per call of verifying and choosing the
 * answer, without Node's HTTP work, which a machine shared with other work makes noisy.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { cpus } from 'node:os';
import { Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { startApp } from '../src/app';
import { bearer, connectClients } from '../src/client/promiseClient';
import { loadConfig } from '../src/config/config';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { createLogger } from '../src/logging/logger';
import { forwardAuthServer } from '../src/transport/http/forwardAuth';
import { summariseProfile } from './cpuprofile';

const ROOT = join(__dirname, '..');
const ROUNDS = Number(process.env.BENCH_FA_ROUNDS ?? 6);
const SECONDS = Number(process.env.BENCH_FA_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_FA_CONCURRENCY ?? 32);
const PROFILE = process.argv.includes('--profile');
const HANDLER_ONLY = process.argv.includes('--handler');
const say = (s: string) => process.stdout.write(`[bench] ${s}\n`);
// As bench/run.ts: the server (this process) on core 0, the load generator on the others.
const PIN = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2;

/**
 * The load generator, run by a separate `node`: closed loops over kept-alive connections, on raw
 * sockets so that one client process can outrun the server (an http.Agent client cannot: it,
 * not the server, would set the pace). Both handlers answer with an empty body, so a response
 * ends at its blank line. Prints one JSON line.
 */
const LOAD = `
const net = require('node:net');
const { port, request, concurrency, ms } = JSON.parse(process.argv[1]);
const latencies = [];
let ok = 0, bad = 0, measuring = false, started = 0;
let stopAt = Date.now() + 500; // the first half-second warms the connections up, unmeasured
const conns = Array.from({ length: concurrency }, () => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let response = '', sentAt = 0n;
  const send = () => { sentAt = process.hrtime.bigint(); socket.write(request); };
  socket.on('connect', send);
  socket.on('data', (chunk) => {
    response += chunk.toString('latin1');
    if (!response.includes('\\r\\n\\r\\n')) return;
    if (measuring) {
      if (response.startsWith('HTTP/1.1 200 ')) ok++; else bad++;
      latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
    }
    response = '';
    if (Date.now() < stopAt) return send();
    if (measuring) { socket.end(); return resolve(); }
    measuring = true;
    started = Date.now();
    stopAt = started + ms;
    send();
  });
  socket.on('error', () => { bad++; resolve(); });
}));
Promise.all(conns).then(() => {
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  process.stdout.write(JSON.stringify({ rps: ok / elapsed, ok, bad, p50: at(0.5), p99: at(0.99) }) + '\\n');
});
`;

interface Round {
  rps: number;
  ok: number;
  bad: number;
  p50: number;
  p99: number;
  /** Server-process CPU (user + system) per answered request, microseconds. */
  cpuUsPerRequest: number;
}

function runLoad(port: number, headers: Record<string, string>, ms: number): Promise<Round> {
  const request = ['GET /authorize HTTP/1.1', 'host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join(
    '\r\n',
  );
  const spec = JSON.stringify({ port, request, concurrency: CONCURRENCY, ms });
  const argv = ['-e', LOAD, spec];
  const child = PIN
    ? spawn('taskset', ['-c', `1-${cpus().length - 1}`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const cpu = process.cpuUsage();
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const used = process.cpuUsage(cpu);
      if (code !== 0) {
        reject(new Error(`load generator exited ${String(code)}`));
        return;
      }
      const r = JSON.parse(out) as Omit<Round, 'cpuUsPerRequest'>;
      // The warm-up half-second is in the CPU time too; the same for both scenarios.
      resolve({ ...r, cpuUsPerRequest: (used.user + used.system) / r.ok });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = (rounds: Round[], pick: (r: Round) => number) => {
  const xs = rounds.map(pick);
  return { median: +median(xs).toFixed(2), min: +Math.min(...xs).toFixed(2), max: +Math.max(...xs).toFixed(2) };
};

async function main(): Promise<void> {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const db = process.env.MONGODB_URI ? undefined : await startEphemeralDatabase({ log: say });
  const uri = process.env.MONGODB_URI ?? db!.uri;
  if (PIN) spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)]);
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
  const sameAnswer = await listen((_req, res) =>
    res
      .writeHead(200, [
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
      ])
      .end(),
  );
  const headers = { 'x-service-token': verifyToken, 'x-api-key': secret, 'x-required-scopes': 'read' };
  const scenarios = { empty: port(empty), sameAnswer: port(sameAnswer), forwardAuth: app.httpAuthPort! };
  const names = Object.keys(scenarios) as (keyof typeof scenarios)[];

  if (HANDLER_ONLY) {
    await handlerAlone(app.httpAuthPort!, headers);
    await Promise.all([empty, sameAnswer].map((server) => new Promise((r) => server.close(r))));
    await app.stop();
    await db?.stop();
    return;
  }
  say(`warm-up, then ${ROUNDS} rounds of each, ${SECONDS} s, ${CONCURRENCY} connections${PIN ? ', server on core 0' : ''}`);
  for (const name of names) await runLoad(scenarios[name], headers, 1000);
  if (PROFILE) {
    for (const name of names) await profileRound(name, () => runLoad(scenarios[name], headers, SECONDS * 1000));
    await Promise.all([empty, sameAnswer].map((server) => new Promise((r) => server.close(r))));
    await app.stop();
    await db?.stop();
    return;
  }
  const rounds = { empty: [] as Round[], sameAnswer: [] as Round[], forwardAuth: [] as Round[] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const name of names) {
      const r = await runLoad(scenarios[name], headers, SECONDS * 1000);
      if (r.bad > 0) throw new Error(`${name}: ${r.bad} requests failed or were not 200`);
      rounds[name].push(r);
      say(`round ${i + 1} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, ${r.cpuUsPerRequest.toFixed(1)} µs CPU/req`);
    }
  }
  await Promise.all([empty, sameAnswer].map((server) => new Promise((r) => server.close(r))));
  await app.stop();
  await db?.stop();

  // Each forward-auth round against the ceiling round just before it.
  const ratios = (ceiling: Round[]) => {
    const xs = rounds.forwardAuth.map((r, i) => r.rps / ceiling[i].rps);
    return { median: +median(xs).toFixed(3), min: +Math.min(...xs).toFixed(3), max: +Math.max(...xs).toFixed(3) };
  };
  const result = {
    date: new Date().toISOString(),
    rounds: ROUNDS,
    seconds: SECONDS,
    concurrency: CONCURRENCY,
    pinned: PIN,
    scenarios: Object.fromEntries(
      names.map((n) => [
        n,
        {
          rps: summary(rounds[n], (r) => r.rps),
          p50ms: summary(rounds[n], (r) => r.p50),
          p99ms: summary(rounds[n], (r) => r.p99),
          cpuUsPerRequest: summary(rounds[n], (r) => r.cpuUsPerRequest),
        },
      ]),
    ),
    forwardAuthRpsRatio: { toEmpty: ratios(rounds.empty), toSameAnswer: ratios(rounds.sameAnswer) },
  };
  console.table(
    Object.fromEntries(
      names.map((n) => [
        n,
        Object.fromEntries(Object.entries(result.scenarios[n]).map(([k, v]) => [k, `${v.median} (${v.min}–${v.max})`])),
      ]),
    ),
  );
  console.log('forward auth ÷ ceiling, req/s per round pair:', JSON.stringify(result.forwardAuthRpsRatio));
  writeFileSync(join(ROOT, 'bench', 'results', 'forwardAuth.json'), JSON.stringify(result, null, 2));
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
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  listener(request(), res); // the first call reads the key and caches it
  await pause(200);
  const CALLS = 20_000;
  /** CPU µs per call of `call`, over rounds after a warm-up one, each followed by a pause for the poll. */
  const measure = async (call: () => void) => {
    const rounds: Round[] = [];
    for (let round = 0; round <= ROUNDS * 5; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) call();
      const used = process.cpuUsage(cpu);
      if (round > 0) rounds.push({ cpuUsPerRequest: (used.user + used.system) / CALLS } as Round);
      await pause(20);
    }
    return summary(rounds, (r) => r.cpuUsPerRequest);
  };
  const building = await measure(request);
  allowed = 0;
  const handling = await measure(() => listener(request(), res));
  if (allowed !== CALLS * (ROUNDS * 5 + 1)) throw new Error('some calls were not answered 200 at once');
  say(`building the request alone, CPU µs per call: ${JSON.stringify(building)}`);
  say(`forward auth's handler, the request built included, CPU µs per call: ${JSON.stringify(handling)}`);
}

/** One round of `name` under V8's sampling profiler: its frames by self time, in µs per request. */
async function profileRound(name: string, round: () => Promise<Round>): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  const r = await round();
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  const dir = join(ROOT, 'bench', 'results', 'profiles');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `forwardAuth-${name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const s = summariseProfile(file, 25);
  // The load's warm-up half-second is in the profile too: a slight overestimate, alike for all.
  const perRequest = (ms: number) => +((ms * 1000) / r.ok).toFixed(2);
  say(`profile ${name}: ${r.rps.toFixed(0)} req/s, busy ${perRequest(s.busyMs)} µs per request; by self time (${file}):`);
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
