// A private, throwaway PostgreSQL cluster for FerretDB's postgresql handler, which pushes equality
// filters down to PostgreSQL (EPHEMERAL_DATABASE=ferretdb-postgresql; benches at scale need it).
// It uses the installed server binaries and installs nothing: without them it fails and says how
// to get them. The cluster lives in its own temporary directory, listens on a free loopback port
// and a unix socket in that directory, trusts local connections, and is removed on stop().
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { exitOf, freeLoopbackPort, readLog, run, sleep, spawnServer, stopChild, tail, type RunAs } from './processes';

export interface PostgresCluster {
  /** Connection string for FerretDB's postgresql handler. */
  url: string;
  /** e.g. "15.14". */
  version: string;
  stop(): Promise<void>;
}

type Log = (line: string) => void;

/** The database FerretDB stores everything in (one PostgreSQL schema per MongoDB database). */
export const POSTGRES_DATABASE = 'ferretdb';
const SUPERUSER = 'postgres';
const SETUP_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const DEBIAN_ROOT = '/usr/lib/postgresql';

export function missingPostgresMessage(): string {
  return [
    `PostgreSQL server binaries (${PROGRAMS.join(', ')}) were not found through POSTGRESQL_BIN_DIR, PATH or`,
    `${DEBIAN_ROOT}/<version>/bin. Install them once (the harness starts its own private cluster; the`,
    "system's own PostgreSQL service need not run):",
    '  sudo apt-get install postgresql        (Debian/Ubuntu)',
    'or set POSTGRESQL_BIN_DIR to the directory that holds them.',
  ].join('\n');
}

/** The programs the cluster's setup runs, all from one installation. */
const PROGRAMS = ['initdb', 'postgres', 'pg_isready', 'createdb'];

/**
 * The installation's bin directory: where POSTGRESQL_BIN_DIR's, else the first PATH entry's,
 * initdb really is (links such as /usr/local/bin/initdb lead there), else the newest of Debian's
 * /usr/lib/postgresql/<version>/bin (not on PATH there). It must hold every one of PROGRAMS.
 * `realPath` answers null for a missing file. Null when no installation is found.
 */
export function findPostgresBinDir(
  env: NodeJS.ProcessEnv,
  realPath: (file: string) => string | null,
  debianVersions: () => string[],
): string | null {
  const installation = (dir: string) => {
    const initdb = realPath(join(dir, 'initdb'));
    const bin = initdb && dirname(initdb);
    return bin && PROGRAMS.every((p) => realPath(join(bin, p))) ? bin : null;
  };
  if (env.POSTGRESQL_BIN_DIR) return installation(env.POSTGRESQL_BIN_DIR);
  const newestFirst = debianVersions()
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(DEBIAN_ROOT, v, 'bin'));
  for (const dir of [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...newestFirst]) {
    const bin = installation(dir);
    if (bin) return bin;
  }
  return null;
}

/** A cluster nobody else connects to: trust authentication, no fsync while initialising it. */
export function initdbArgs(dataDir: string): string[] {
  return ['-D', dataDir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'];
}

/** Loopback TCP for FerretDB, and the unix socket in our own directory (the default, /var/run/postgresql, may not be writable). */
export function postgresArgs(c: { dataDir: string; port: number; socketDir: string }): string[] {
  return ['-D', c.dataDir, '-p', String(c.port), '-h', '127.0.0.1', '-k', c.socketDir];
}

/**
 * postgres refuses to run as root: then its processes run as `nobody` (uid and gid from /etc/passwd),
 * owning the cluster's directory. Any other user runs them as itself (undefined).
 */
export function unprivilegedUser(uid: number | undefined, passwd: string): RunAs | undefined {
  if (uid !== 0) return undefined;
  const entry = passwd.split('\n').find((line) => line.startsWith('nobody:'));
  const [, , u, g] = entry?.split(':') ?? [];
  return u && g ? { uid: Number(u), gid: Number(g) } : { uid: 65534, gid: 65534 };
}

export async function startPostgres(log: Log): Promise<PostgresCluster> {
  const binDir = findPostgresBinDir(process.env, realPathOrNull, () => (existsSync(DEBIAN_ROOT) ? readdirSync(DEBIAN_ROOT) : []));
  if (!binDir) throw new Error(missingPostgresMessage());
  const bin = (name: string) => join(binDir, name);
  const runAs = unprivilegedUser(process.getuid?.(), readPasswd());

  const dir = mkdtempSync(join(tmpdir(), 'apikeys-postgres-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  const logFile = join(dir, 'postgres.log');
  mkdirSync(socketDir);
  if (runAs) [dir, socketDir].forEach((d) => chownSync(d, runAs.uid, runAs.gid));

  const step = async (what: string, cmd: string, args: string[], as?: RunAs) => {
    const { code, output } = await run(bin(cmd), args, { timeoutMs: SETUP_TIMEOUT_MS, runAs: as });
    if (code !== 0) throw new Error(`${what} failed (${code ?? 'killed after timeout'}):\n${tail(output)}`);
    return output;
  };

  let child: ReturnType<typeof spawnServer> | undefined;
  // A parent that exits without stop() must not leave a cluster behind: SIGQUIT is postgres's
  // immediate shutdown, which also ends its backends.
  const abandon = () => {
    child?.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', abandon);
  const stop = async () => {
    process.off('exit', abandon);
    // SIGINT: fast shutdown, not waiting for clients to disconnect.
    if (child) await stopChild(child, 'SIGINT', STOP_GRACE_MS);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const version = /(\d+(\.\d+)*)/.exec(await step('postgres --version', 'postgres', ['--version']))?.[1] ?? 'unknown';
    log(`PostgreSQL ${version} from ${binDir}: initdb${runAs ? ` as uid ${runAs.uid}` : ''}…`);
    await step('initdb', 'initdb', initdbArgs(dataDir), runAs);
    const port = await freeLoopbackPort();
    child = spawnServer(bin('postgres'), postgresArgs({ dataDir, port, socketDir }), logFile, runAs);
    await waitUntilAccepting(bin('pg_isready'), socketDir, port, child, logFile);
    await step('createdb', 'createdb', ['-h', socketDir, '-p', String(port), '-U', SUPERUSER, POSTGRES_DATABASE]);
    return { url: `postgres://${SUPERUSER}@127.0.0.1:${port}/${POSTGRES_DATABASE}`, version, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitUntilAccepting(
  pgIsReady: string,
  socketDir: string,
  port: number,
  child: ReturnType<typeof spawnServer>,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const exit = exitOf(child);
    if (exit) throw new Error(`postgres exited early (${exit}); its log ends with:\n${tail(readLog(logFile))}`);
    const { code } = await run(pgIsReady, ['-q', '-h', socketDir, '-p', String(port), '-U', SUPERUSER], { timeoutMs: 5_000 });
    if (code === 0) return;
    await sleep(200);
  }
  throw new Error(`postgres did not accept connections within ${READY_TIMEOUT_MS / 1000}s; its log ends with:\n${tail(readLog(logFile))}`);
}

function realPathOrNull(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null;
  }
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}
