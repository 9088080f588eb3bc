// Starts a throwaway MongoDB-wire server for development and tests, when no MONGODB_URI is set.
// Preference: FerretDB (embedded SQLite, built from tools/ferretdb with Go — this machine kind
// reaches the Go module proxy), then mongodb-memory-server (downloads a real mongod).
// EPHEMERAL_DATABASE=ferretdb-postgresql (or the `database` option) asks for FerretDB over a
// private PostgreSQL cluster instead, with no fallback: FerretDB's SQLite handler reads the whole
// collection for every query, its PostgreSQL handler pushes equality filters down, which is what
// benches with many keys need. It uses installed PostgreSQL binaries (src/devdb/postgres.ts).
import { type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { MongoClient } from 'mongodb';
import { startPostgres } from './postgres';
import { exitOf, freeLoopbackPort, messageOf, readLog, run, sleep, spawnServer, stopChild, tail } from './processes';

export { freeLoopbackPort } from './processes';

export interface EphemeralDatabase {
  uri: string;
  kind: 'ferretdb' | 'mongodb-memory-server';
  description: string;
  /** FerretDB only: the server's process id (its CPU can be read from /proc; over PostgreSQL, the scans run in PostgreSQL's processes, not counted there). */
  readonly pid?: number;
  stop(): Promise<void>;
  /** FerretDB only: kill the server abruptly, keeping its data (fault tests). */
  kill?(): Promise<void>;
  /** FerretDB only: start it again on the same address and data after kill(). */
  restart?(): Promise<void>;
}

type Log = (line: string) => void;

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const BUILD_TIMEOUT_MS = 10 * 60_000;

/** The ephemeral databases one can ask for by name (EPHEMERAL_DATABASE). */
export const EPHEMERAL_DATABASES = ['ferretdb-sqlite', 'ferretdb-postgresql'] as const;
export type EphemeralDatabaseChoice = (typeof EPHEMERAL_DATABASES)[number];

/** EPHEMERAL_DATABASE's value; unset or empty is the default, FerretDB on SQLite. */
export function ephemeralDatabaseChoice(value: string | undefined): EphemeralDatabaseChoice {
  if (!value) return 'ferretdb-sqlite';
  const choice = EPHEMERAL_DATABASES.find((c) => c === value);
  if (!choice) throw new Error(`EPHEMERAL_DATABASE=${value} is not one of ${EPHEMERAL_DATABASES.join(', ')}`);
  return choice;
}

export async function startEphemeralDatabase(opts: { log?: Log; database?: EphemeralDatabaseChoice } = {}): Promise<EphemeralDatabase> {
  const log = opts.log ?? (() => {});
  const choice = opts.database ?? ephemeralDatabaseChoice(process.env.EPHEMERAL_DATABASE);
  // Asked for by name: a failure is reported, not replaced by another database.
  if (choice === 'ferretdb-postgresql') return startFerretDB(log, 'postgresql');
  let ferretError: unknown;
  try {
    return await startFerretDB(log, 'sqlite');
  } catch (err) {
    ferretError = err;
    log(`FerretDB skipped: ${messageOf(err)}`);
  }
  try {
    log('falling back to mongodb-memory-server (may download mongod on first run)…');
    return await startMemoryServer();
  } catch (memoryError) {
    throw new Error(noDatabaseMessage(ferretError, memoryError), { cause: memoryError });
  }
}

// ---------- FerretDB ----------

async function startFerretDB(log: Log, handler: 'sqlite' | 'postgresql'): Promise<EphemeralDatabase> {
  const toolDir = findFerretToolDir();
  const launcher = await ensureLauncher(toolDir, log);
  const postgres = handler === 'postgresql' ? await startPostgres(log) : undefined;
  const port = await freeLoopbackPort();
  const workDir = mkdtempSync(join(tmpdir(), 'apikeys-ferretdb-'));
  const logFile = join(workDir, 'ferretdb.log');
  const store = postgres ? ['-postgresql-url', postgres.url] : ['-dir', join(workDir, 'data')];
  const spawnIt = () => spawnServer(launcher, ['-listen', `127.0.0.1:${port}`, ...store], logFile);
  let child = spawnIt();
  // A parent that exits without stop() (crash, failed test run) must not leave an orphan server.
  // (Ctrl-C in a terminal reaches the launcher directly: it shares our process group.)
  const killOnExit = () => {
    child.kill('SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    await stopChild(child, 'SIGTERM', STOP_GRACE_MS);
    await postgres?.stop();
    rmSync(workDir, { recursive: true, force: true });
  };

  const uri = `mongodb://127.0.0.1:${port}/`;
  try {
    await waitUntilReady(uri, child, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  const version = ferretVersion(toolDir);
  return {
    uri,
    kind: 'ferretdb',
    description: `FerretDB ${version} (${postgres ? `PostgreSQL ${postgres.version}, private cluster` : 'embedded SQLite'}) at ${uri}`,
    get pid() {
      return child.pid;
    },
    stop,
    async kill() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      child = spawnIt();
      await waitUntilReady(uri, child, logFile);
    },
  };
}

// Walks up from this file so it works from src/ (tsx, jest) and from dist/ alike.
function findFerretToolDir(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'tools', 'ferretdb');
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`tools/ferretdb not found above ${__dirname}`);
  }
}

async function ensureLauncher(toolDir: string, log: Log): Promise<string> {
  const launcher = join(toolDir, 'bin', 'ferretdb-launcher');
  const exists = existsSync(launcher);
  if (exists && !isStale(launcher, toolDir)) return launcher;
  if (!onPath('go')) {
    // A stale but working binary beats no database at all.
    if (exists) return launcher;
    throw new Error(`${launcher} is not built and Go is not installed (no \`go\` on PATH)`);
  }
  try {
    log(`building FerretDB launcher with Go${exists ? ' (sources changed)' : ' (first run only, ~1-2 min)'}…`);
    await buildLauncher(toolDir, launcher);
    log('FerretDB launcher built');
  } catch (err) {
    if (!exists) throw err;
    log(`rebuilding FerretDB launcher failed, using the existing one: ${messageOf(err)}`);
  }
  return launcher;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

function isStale(launcher: string, toolDir: string): boolean {
  const built = statSync(launcher).mtimeMs;
  return ['main.go', 'go.mod', 'go.sum'].some((f) => statSync(join(toolDir, f)).mtimeMs > built);
}

// Builds to a temporary name and renames, so a concurrent run never executes a half-written file.
async function buildLauncher(toolDir: string, launcher: string): Promise<void> {
  const tmp = `${launcher}.tmp-${process.pid}`;
  try {
    const { code, output } = await run('go', ['build', '-o', tmp, '.'], { cwd: toolDir, timeoutMs: BUILD_TIMEOUT_MS });
    if (code !== 0) throw new Error(`go build failed (${code ?? 'killed after timeout'}):\n${tail(output)}`);
    renameSync(tmp, launcher);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

async function waitUntilReady(uri: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`could not run the FerretDB launcher: ${spawnError.message}`);
    const exit = exitOf(child);
    if (exit) throw new Error(`FerretDB exited early (${exit}); its log ends with:\n${tail(readLog(logFile))}`);
    try {
      await ping(uri);
      return;
    } catch (err) {
      lastError = err;
      await sleep(200);
    }
  }
  throw new Error(
    `FerretDB did not answer at ${uri} within ${READY_TIMEOUT_MS / 1000}s (${messageOf(lastError)}); ` +
      `its log ends with:\n${tail(readLog(logFile))}`,
  );
}

async function ping(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000 });
  try {
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}

// FerretDB embedded as a library reports ferretdbVersion "unknown", so read it from go.mod.
function ferretVersion(toolDir: string): string {
  const goMod = readFileSync(join(toolDir, 'go.mod'), 'utf8');
  return /github\.com\/FerretDB\/FerretDB v(\S+)/.exec(goMod)?.[1] ?? '(unknown version)';
}

// ---------- mongodb-memory-server ----------

async function startMemoryServer(): Promise<EphemeralDatabase> {
  // Loaded lazily: it is a dev dependency and only needed when FerretDB is unavailable.
  const { MongoMemoryServer } = await import('mongodb-memory-server-core');
  const server = await MongoMemoryServer.create();
  const uri = server.getUri();
  return {
    uri,
    kind: 'mongodb-memory-server',
    description: `mongod (mongodb-memory-server) at ${uri}`,
    stop: async () => {
      await server.stop();
    },
  };
}

// ---------- helpers ----------

function noDatabaseMessage(ferretError: unknown, memoryError: unknown): string {
  return [
    'No MongoDB-compatible database is available. To get one, do any of:',
    '  - set MONGODB_URI to a reachable MongoDB (e.g. MONGODB_URI=mongodb://127.0.0.1:27017/);',
    '  - install Go >= 1.24 so the FerretDB launcher can be built:',
    '      cd tools/ferretdb && go build -o bin/ferretdb-launcher .',
    '  - allow mongodb-memory-server to download mongod (internet access, or set MONGOMS_SYSTEM_BINARY',
    '    to a local mongod).',
    `FerretDB failed: ${messageOf(ferretError)}`,
    `mongodb-memory-server failed: ${messageOf(memoryError)}`,
  ].join('\n');
}
