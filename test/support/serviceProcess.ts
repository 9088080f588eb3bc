// Runs the production entry point (src/main.ts, or the build's dist/main.js) as a child process, as it runs in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { checkHealth } from '../../src/client/health';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';

const ROOT = join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  /** Set when env.METRICS_ADDR is "on" (a free loopback port is chosen). */
  metricsPort?: number;
  jwtSecret: string;
  verifyToken: string;
  /** Every JSON log line so far (none with keepLogs: false). */
  logs: Record<string, unknown>[];
  /** Bytes the service wrote to stdout (its logs) so far. */
  readonly logBytes: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running (cleanup). */
  kill(): void;
}

export interface ServiceProcessOptions {
  /** SIGUSR2 makes the service collect garbage (test/support/gcOnSignal.cjs). */
  gcOnSignal?: boolean;
  /** 'build': `node dist/main.js`, as the image runs it (after `npm run build`); default 'source'. */
  entry?: 'source' | 'build';
  /** More node flags (e.g. --cpu-prof, --require a preload). */
  nodeArgs?: string[];
  /** false: only count the bytes of the logs, as a log shipper reads them (a long load run logs millions of lines). */
  keepLogs?: boolean;
  /** Run under `taskset -c <cpus>` (a CPU list such as "0"). */
  cpus?: string;
}

/** Ports are chosen up front, and readiness is the health service saying SERVING: no log parsing needed. */
export async function startServiceProcess(env: Record<string, string>, options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const port = await freeLoopbackPort();
  const metricsPort = env.METRICS_ADDR === 'on' ? await freeLoopbackPort() : undefined;
  // Given secrets let several instances accept the same tokens.
  const jwtSecret = env.AUTH_JWT_SECRET ?? randomBytes(32).toString('base64url');
  const verifyToken = env.VERIFY_TOKENS ?? `vt_${randomBytes(24).toString('base64url')}`;
  // `node --import tsx` rather than `npx tsx`: one process, so signals reach the service itself
  // (npx does not forward them) — as with `node dist/main.js` in the image. taskset execs node.
  const gc = options.gcOnSignal ? ['--expose-gc', '--require', join(__dirname, 'gcOnSignal.cjs')] : [];
  const entry = options.entry === 'build' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const node = [process.execPath, ...gc, ...(options.nodeArgs ?? []), ...entry];
  const [command, ...args] = options.cpus ? ['taskset', '-c', options.cpus, ...node] : node;
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      AUTH_JWT_SECRET: jwtSecret,
      VERIFY_TOKENS: verifyToken,
      PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'info',
      ...env,
      GRPC_ADDR: `127.0.0.1:${port}`,
      METRICS_ADDR: metricsPort ? `127.0.0.1:${metricsPort}` : 'off',
    },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let logBytes = 0;
  child.stdout.on('data', (d: Buffer) => (logBytes += d.length));
  if (options.keepLogs !== false) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    });
  }
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 30_000;
  while ((await checkHealth(`127.0.0.1:${port}`, '', 500).catch(() => 'DOWN')) !== 'SERVING') {
    if (child.exitCode !== null) throw new Error(`the service exited early (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      kill();
      throw new Error(`the service did not start within 30 s: ${stderr}`);
    }
    await sleep(100);
  }
  return {
    child,
    port,
    metricsPort,
    jwtSecret,
    verifyToken,
    logs,
    get logBytes() {
      return logBytes;
    },
    exited,
    kill,
  };
}
