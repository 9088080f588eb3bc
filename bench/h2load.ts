/**
 * h2load (nghttp2's HTTP/2 load generator), the load generator of `npm run bench`. A unary gRPC
 * call over h2c is an HTTP/2 POST whose body is the 5-byte gRPC frame prefix and the request
 * message: h2load sends the same body on every stream, for a few µs of CPU per call, so the
 * server, not the client, limits throughput (ghz, a Go gRPC client, spent about as much CPU per
 * call as the server did). h2load sees HTTP statuses only (200 whatever the gRPC status), so the
 * bench checks each run against the server's own counters (bench/serverCounts.ts).
 * bench/forwardAuth.ts uses it over HTTP/1.1 (`h1`), for plain GETs without a body.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Fails with the command that installs h2load when it is not on PATH. */
export function checkH2load(): string {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error('h2load not found: install it with `apt-get install -y nghttp2-client` (Debian, Ubuntu; `nghttp2` elsewhere)');
  }
  return r.stdout.trim();
}

/** One unary RPC as h2load sends it, or a plain GET (no `messages`). */
export interface H2Call {
  /** "/package.Service/Method", or the GET's path */
  path: string;
  /**
   * Encoded request messages. One: every call sends it, on `connections` × `streams`. Several:
   * one h2load per message, with one connection and one stream each, so that no two calls in
   * flight carry the same message (concurrent reads of one key would be shared). None: a GET
   * without a body or gRPC headers.
   */
  messages?: Uint8Array[];
  headers?: Record<string, string>;
}

export interface H2Load {
  seconds: number;
  /** HTTP/2 connections (h2load -c), and streams in flight on each (-m). */
  connections: number;
  streams: number;
  /** Calls per second at most, all connections together; unset: as fast as the server answers. */
  rps?: number;
  /** Run h2load under `taskset -c <cpus>`. */
  cpus?: string;
  /** HTTP/1.1 (h2load --h1) on kept-alive connections; `streams` is then requests pipelined on each. */
  h1?: boolean;
  /**
   * Called once h2load has exited, before its output is read: a server in the caller's process
   * reads its CPU time there, without the parsing of h2load's log.
   */
  ended?: () => void;
}

export interface H2Result {
  /** Calls answered (HTTP 200, trailers received) within the duration. */
  calls: number;
  /** The measured duration, as h2load timed it. */
  seconds: number;
  /** Calls sent: those still in flight when the duration ended were cut (the server may count them CANCELLED). */
  started: number;
  /** Streams that failed (errors and timeouts included) or were answered with an HTTP status other than 2xx. */
  failed: number;
  /** Answers with an HTTP status other than 2xx (h2load may count them in `failed` too). */
  notOk: number;
  /** h2load's own CPU time (user + system). */
  cpuSeconds: number;
  /**
   * Of which user time: the rest is the kernel's, most of it loopback TCP, which a sender pays for
   * the receiving side's processing of its packets too.
   */
  userCpuSeconds: number;
  /** Of each answered call. */
  durationsUs: number[];
}

/** What h2load prints at the end of a run, the parts the bench uses. */
export interface H2Summary {
  seconds: number;
  started: number;
  succeeded: number;
  /** Streams that failed, errors and timeouts included. */
  failed: number;
  /** Answers with an HTTP status other than 2xx. */
  notOk: number;
}

export function parseH2loadSummary(stdout: string): H2Summary {
  const finished = /^finished in ([\d.]+)(s|ms|us),/m.exec(stdout);
  const requests = /^requests: \d+ total, (\d+) started, \d+ done, (\d+) succeeded, (\d+) failed,/m.exec(stdout);
  const status = /^status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(stdout);
  if (!finished || !requests || !status) throw new Error(`unexpected h2load output:\n${stdout}`);
  const unit = { s: 1, ms: 1e-3, us: 1e-6 }[finished[2] as 's' | 'ms' | 'us'];
  const [started, succeeded, failed] = requests.slice(1).map(Number);
  const notOk = status.slice(1).reduce((a, x) => a + Number(x), 0);
  return { seconds: Number(finished[1]) * unit, started, succeeded, failed, notOk };
}

/**
 * Call durations in µs from an h2load --log-file (tab-separated: start time, HTTP status, µs
 * until the end of the response; -1 as status for a failed stream), answered calls only.
 */
export function parseH2loadLog(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [, status, us] = line.split('\t');
    if (status === '200') out.push(Number(us));
  }
  return out;
}

/** The q-quantile (0 < q ≤ 1) of `xs` by the nearest-rank method; NaN when empty. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** A message as a gRPC length-prefixed frame: not compressed, 4-byte big-endian length. */
export function grpcFrame(message: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

// Asynchronous: the caller reads the server's counters meanwhile.
const execFileAsync = promisify(execFile);

/** User and system CPU seconds of the reaped children of the shell that wrote this /proc/<pid>/stat. */
const childrenCpuSeconds = (stat: string) => {
  const fields = stat.split(') ')[1].split(' ');
  return { user: Number(fields[13]) / 100, system: Number(fields[14]) / 100 }; // cutime, cstime; getconf CLK_TCK
};

export async function runH2load(origin: string, c: H2Call, load: H2Load): Promise<H2Result> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-h2load-'));
  try {
    const messages = c.messages ?? [undefined];
    const n = messages.length;
    const [connections, streams] = n === 1 ? [load.connections, load.streams] : [1, 1];
    const headers = { ...(c.messages && { 'content-type': 'application/grpc', te: 'trailers' }), ...c.headers };
    const runs = messages.map(async (message, i) => {
      const body = join(dir, `${i}.bin`);
      const log = join(dir, `${i}.log`);
      const stat = join(dir, `${i}.stat`);
      if (message) writeFileSync(body, grpcFrame(message));
      const args = [
        ...['-D', `${Math.round(load.seconds * 1000)}ms`, '-c', String(connections), '-m', String(streams)],
        ...(load.rps ? ['--rps', String(Math.max(1, Math.round(load.rps / n / connections)))] : []),
        ...(load.h1 ? ['--h1'] : []),
        ...(message ? ['-d', body] : []),
        ...['--log-file', log],
        ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
        `${origin}${c.path}`,
      ];
      // The shell reaps h2load, then its own /proc stat holds h2load's CPU time (cutime, cstime).
      const sh = ['sh', '-c', 'h2load "$@" && cat /proc/$$/stat > "$0"', stat, ...args];
      const [command, ...rest] = load.cpus ? ['taskset', '-c', load.cpus, ...sh] : sh;
      const { stdout } = await execFileAsync(command, rest, { maxBuffer: 64 * 1024 * 1024 });
      return { stdout, log, stat };
    });
    const exited = await Promise.all(runs);
    load.ended?.();
    const results = exited.map(({ stdout, log, stat }) => ({
      summary: parseH2loadSummary(stdout),
      durations: parseH2loadLog(readFileSync(log, 'utf8')),
      cpu: childrenCpuSeconds(readFileSync(stat, 'utf8')),
    }));
    const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((a, r) => a + f(r), 0);
    return {
      calls: sum((r) => r.summary.succeeded),
      // Processes run side by side: their mean duration.
      seconds: sum((r) => r.summary.seconds) / n,
      started: sum((r) => r.summary.started),
      failed: sum((r) => r.summary.failed + r.summary.notOk),
      notOk: sum((r) => r.summary.notOk),
      cpuSeconds: sum((r) => r.cpu.user + r.cpu.system),
      userCpuSeconds: sum((r) => r.cpu.user),
      durationsUs: results.flatMap((r) => r.durations),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
