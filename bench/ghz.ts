/**
 * ghz (github.com/bojand/ghz), the load generator of `npm run bench`: finding or installing it,
 * and one closed-loop run of one call.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(__dirname, '..');
const GHZ_VERSION = 'v0.93.0';

/** tools/bin/ghz, else ghz on PATH, else installed with Go into tools/bin. */
export function ghzBinary(say: (s: string) => void): string {
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

/** One RPC as ghz calls it. */
export interface GhzCall {
  /** package.Service.Method */
  call: string;
  /** The .proto declaring it, and where its imports are found. */
  proto: string;
  importPaths: string[];
  /** One request, or an array ghz sends round-robin. */
  data: unknown;
  metadata?: Record<string, string>;
}

export interface GhzLoad {
  /** e.g. "5s" */
  duration: string;
  concurrency: number;
  connections: number;
  /** Calls per second, at most (ghz --rps); unset: as fast as the server answers. */
  rps?: number;
  /** Run ghz under `taskset -c <cpus>`. */
  cpus?: string;
}

export interface GhzResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  calls: number;
  /** Calls that failed on the server's side (not the ones ghz cut when the duration ended), by error. */
  errors: Record<string, number>;
}

// Asynchronous: a caller may have work of its own to do meanwhile.
const execFileAsync = promisify(execFile);

export async function runGhz(ghz: string, addr: string, c: GhzCall, load: GhzLoad): Promise<GhzResult> {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const dataFile = join(ROOT, 'bench', 'results', 'data.json');
  writeFileSync(dataFile, JSON.stringify(c.data));
  const args = [
    '--insecure',
    '--proto',
    c.proto,
    '--import-paths',
    c.importPaths.join(','),
    '--call',
    c.call,
    '--data-file',
    dataFile,
    ...(c.metadata ? ['--metadata', JSON.stringify(c.metadata)] : []),
    '--concurrency',
    String(load.concurrency),
    '--connections',
    String(load.connections),
    ...(load.rps ? ['--rps', String(load.rps)] : []),
    '--duration',
    load.duration,
    '--format',
    'json',
    addr,
  ];
  const [command, ...rest] = load.cpus ? ['taskset', '-c', load.cpus, ghz, ...args] : [ghz, ...args];
  const { stdout } = await execFileAsync(command, rest, { maxBuffer: 512 * 1024 * 1024 });
  const report = JSON.parse(stdout) as {
    rps: number;
    count: number;
    latencyDistribution: { percentage: number; latency: number }[] | null;
    errorDistribution?: Record<string, number>;
  };
  if (!report.latencyDistribution) {
    throw new Error(`${c.call}: no successful calls; ghz errors: ${JSON.stringify(report.errorDistribution)}`);
  }
  const latencies = report.latencyDistribution;
  const pct = (p: number) => (latencies.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  // ghz cuts the calls in flight when the duration ends ("transport is closing", Canceled):
  // those are the client's doing, not the server's errors.
  const errors = Object.fromEntries(
    Object.entries(report.errorDistribution ?? {}).filter(([e]) => !/(transport|client connection) is closing|Canceled/.test(e)),
  );
  return { rps: report.rps, p50ms: pct(50), p99ms: pct(99), calls: report.count, errors };
}
