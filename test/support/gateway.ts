// What the proxy tests share: a real proxy binary run with the configuration block of
// docs/gateways.md as written (addresses and token substituted), in front of a small upstream that
// records the headers it receives.
import type { Metadata } from '@grpc/grpc-js';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { generateSecret } from '../../src/domain/keyFormat';
import type { ForwardAuthServer } from './forwardAuth';
import { startSecondInstance } from './server';

const ROOT = join(__dirname, '..', '..');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The proxy's binary: `$envVar`, else on PATH, else in /usr/sbin. Never skipped: missing, it fails and says how to install it. */
export function proxyBinary(name: string, envVar: string, install: string): string {
  const candidates = [process.env[envVar], ...(process.env.PATH ?? '').split(':').map((d) => join(d, name)), `/usr/sbin/${name}`];
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error(`${name} is not installed: ${install}, or set ${envVar}. This test never skips.`);
  return found;
}

/** The ```lang block of docs/gateways.md with each `[from, to]` applied; every `from` must be there exactly once. */
export function documentedBlock(lang: string, substitutions: [string, string][]): string {
  const page = readFileSync(join(ROOT, 'docs', 'gateways.md'), 'utf8');
  let block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(page)?.[1];
  if (!block) throw new Error(`docs/gateways.md has no \`\`\`${lang} block`);
  for (const [from, to] of substitutions) {
    if (block.split(from).length !== 2) throw new Error(`docs/gateways.md's ${lang} block must contain "${from}" exactly once`);
    block = block.replace(from, to);
  }
  return block;
}

export async function waitForPort(port: number, proxy: ChildProcess, log: () => string): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (proxy.exitCode !== null) throw new Error(`the proxy exited (${proxy.exitCode}):\n${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`the proxy did not listen on ${port} within 10 s:\n${log()}`);
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export interface Upstream {
  port: number;
  close(): Promise<void>;
  /** A client's request through the proxy at `base`: its answer, and what the upstream saw if it got there. */
  through(
    base: string,
    headers: Record<string, string>,
    method?: string,
  ): Promise<{ status: number; headers: Headers; body: string; reachedUpstream: boolean; seen?: IncomingHttpHeaders }>;
}

/** An upstream that answers 200 to everything and remembers the headers of each request. */
export async function startUpstream(): Promise<Upstream> {
  const reached: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    reached.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
    async through(base, headers, method = 'GET') {
      const before = reached.length;
      const res = await fetch(`${base}/v1/orders?page=2`, { method, headers, body: method === 'POST' ? '{"order":1}' : undefined });
      const body = await res.text();
      const seen = reached.length > before ? reached.at(-1) : undefined;
      return { status: res.status, headers: res.headers, body, reachedUpstream: seen !== undefined, seen };
    },
  };
}

type Through = (headers: Record<string, string>, method?: string) => ReturnType<Upstream['through']>;

/**
 * The cases every documented proxy configuration must pass alike, as jest tests of the calling
 * describe block; `get` is read when they run (after its beforeAll).
 */
export function sharedProxyCases(get: () => { endpoint: ForwardAuthServer; admin: Metadata; through: Through }): void {
  const create = (scopes: string[], extra: Record<string, unknown> = {}) => {
    const { endpoint, admin } = get();
    return endpoint.server.clients.keys.createKey({ name: 'k', scopes, ...extra }, admin);
  };

  it('refuses a key revoked through another instance within the revocation bound (1 s) of RevokeKey answering', async () => {
    const { endpoint, admin, through } = get();
    const s = endpoint.server;
    const other = await startSecondInstance(s);
    try {
      const { key, secret } = await create(['read']);
      expect((await through({ 'x-api-key': secret })).status).toBe(200); // cached by the instance the proxy asks
      await other.clients.keys.revokeKey({ id: key!.id }, admin);
      const answered = Date.now();
      const bound = s.config.verify.revocationBoundMs;
      // Until the bound the key may still pass; from it on it must not, on every instance.
      while (Date.now() - answered < bound) {
        if ((await through({ 'x-api-key': secret })).status === 401) break;
        await sleep(50);
      }
      await sleep(Math.max(0, bound - (Date.now() - answered)));
      const after = await through({ 'x-api-key': secret });
      expect({ status: after.status, reachedUpstream: after.reachedUpstream }).toEqual({ status: 401, reachedUpstream: false });
    } finally {
      await other.stop();
    }
  });

  it('answers 429 with Retry-After and 503 before the upstream', async () => {
    const { endpoint, through } = get();
    const { secret } = await create(['read'], { rateLimit: { limit: 1, windowSeconds: 60 } });
    expect((await through({ 'x-api-key': secret })).status).toBe(200);
    const limited = await through({ 'x-api-key': secret });
    expect({ status: limited.status, reachedUpstream: limited.reachedUpstream }).toEqual({ status: 429, reachedUpstream: false });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);

    const down = await endpoint.whileStorageDown(() => through({ 'x-api-key': generateSecret('sk', 'live') }));
    expect({ status: down.status, reachedUpstream: down.reachedUpstream }).toEqual({ status: 503, reachedUpstream: false });
  });
}
