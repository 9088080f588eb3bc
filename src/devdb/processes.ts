// Child processes of the ephemeral databases (FerretDB launcher, PostgreSQL): running a command to
// completion, starting a server whose output goes to a log file, stopping it, reading that log.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Runs the child as this user and group (postgres refuses to run as root). */
export interface RunAs {
  uid: number;
  gid: number;
}

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs: number; runAs?: RunAs },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], ...opts.runAs });
    // Our own timer, not spawn's `timeout` option: that one is not cleared when the spawn
    // itself fails (ENOENT), which kept the process alive for the whole timeout.
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Starts a server whose output goes to `logFile`: noise on the console, but needed to explain a failed start. */
export function spawnServer(cmd: string, args: string[], logFile: string, runAs?: RunAs): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...runAs });
    child.on('error', () => {}); // reported through exitCode / the caller's readiness check instead of crashing
    // Don't keep the parent alive just because the server runs; stop() or exit handles it.
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Signals the child and waits for its exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.ref(); // keep the event loop alive until the exit is observed
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Why a server child is no longer running, or null while it runs. */
export function exitOf(child: ChildProcess): string | null {
  if (child.exitCode !== null) return `code ${child.exitCode}`;
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return null;
}

/** A port nothing listens on right now (tests and the database servers take it next). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '(no log)';
  }
}

export function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
