// What the proxy tests share: a real proxy binary run with the configuration block of
// docs/gateways.md as written (addresses and token substituted), in front of a small upstream that
// records the headers it receives.
import type { Metadata } from '@grpc/grpc-js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';
import { generateSecret } from '../../src/domain/keyFormat';
import { startForwardAuthServer, type ForwardAuthServer } from './forwardAuth';
import { startSecondInstance } from './server';

const ROOT = join(__dirname, '..', '..');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The proxy's binary: `$envVar`, else tools/proxies/bin (tools/proxies/install.sh), else on PATH,
 * else in /usr/sbin. Never skipped: missing, it fails and says how to install it.
 */
export function proxyBinary(name: string, envVar: string, install: string): string {
  const candidates = [
    process.env[envVar],
    join(ROOT, 'tools', 'proxies', 'bin', name),
    ...(process.env.PATH ?? '').split(':').map((d) => join(d, name)),
    `/usr/sbin/${name}`,
  ];
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error(`${name} is not installed: ${install}, or set ${envVar}. This test never skips.`);
  return found;
}

/**
 * The first ```lang block of docs/gateways.md after the heading line `section` (the page's first
 * without one) with each `[from, to]` applied; every `from` must be there exactly once.
 */
export function documentedBlock(lang: string, substitutions: [string, string][], section?: string): string {
  const lines = readFileSync(join(ROOT, 'docs', 'gateways.md'), 'utf8').split('\n');
  const at = section === undefined ? 0 : lines.indexOf(section);
  if (at < 0) throw new Error(`docs/gateways.md has no heading "${String(section)}"`);
  const page = lines.slice(at).join('\n');
  let block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(page)?.[1];
  const where = `docs/gateways.md's ${lang} block${section ? ` under "${section}"` : ''}`;
  if (!block) throw new Error(`${where} is missing`);
  for (const [from, to] of substitutions) {
    if (block.split(from).length !== 2) throw new Error(`${where} must contain "${from}" exactly once`);
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

/** A request's headers as they went over the wire: name (its case kept) and value, in order, repeats kept. */
export type RawHeaders = [string, string][];

/** A client's request: a record, or raw pairs to send odd-cased, repeated or underscored names as written. */
export type ClientHeaders = Record<string, string> | RawHeaders;

/** The values of `name` (any case) in `raw`, one per header line. */
export const valuesOf = (raw: RawHeaders | undefined, name: string): string[] =>
  (raw ?? []).filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

export interface Upstream {
  port: number;
  close(): Promise<void>;
  /** A client's request through the proxy at `base`: its answer, and what the upstream saw if it got there. */
  through(
    base: string,
    headers: ClientHeaders,
    method?: string,
  ): Promise<{ status: number; headers: Headers; body: string; reachedUpstream: boolean; seen?: RawHeaders }>;
}

const pairs = (flat: string[]): RawHeaders => flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]] as [string, string]]));

/** An upstream that answers 200 to everything and remembers the raw headers of each request. */
export async function startUpstream(): Promise<Upstream> {
  const reached: RawHeaders[] = [];
  const server: Server = createServer((req, res) => {
    reached.push(pairs(req.rawHeaders));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upstream: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
    async through(base, headers, method = 'GET') {
      const before = reached.length;
      const body = method === 'POST' ? '{"order":1}' : undefined;
      const url = new URL(`${base}/v1/orders?page=2`);
      // Node sends an array of headers as written (fetch would lowercase and merge them), adding nothing: host and length here.
      const raw: RawHeaders = [['host', url.host], ...(Array.isArray(headers) ? headers : Object.entries(headers))];
      if (body) raw.push(['content-type', 'application/json'], ['content-length', String(Buffer.byteLength(body))]);
      const answer = await new Promise<{ status: number; headers: Headers; body: string }>((resolve, reject) => {
        const req = request(url, { method, headers: raw.flat(), agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, headers: new Headers(pairs(res.rawHeaders)), body: text }));
        });
        req.on('error', reject).end(body);
      });
      const seen = reached.length > before ? reached.at(-1) : undefined;
      return { ...answer, reachedUpstream: seen !== undefined, seen };
    },
  };
}

type Through = (headers: ClientHeaders, method?: string) => ReturnType<Upstream['through']>;

export interface ProxyUnderTest {
  endpoint: ForwardAuthServer;
  admin: { orgId: string; metadata: Metadata };
  /** A client's request through the proxy to the upstream. */
  through: Through;
}

export interface Ports {
  apikeys: number;
  upstream: number;
  proxy: number;
}

/** How to run a proxy once its configuration is written. */
export interface Launch {
  /** Arguments of a dry run that must accept the configuration first (`caddy validate`, `envoy --mode validate`). */
  check?: string[];
  run: string[];
  env?: NodeJS.ProcessEnv;
  /** What the configuration started besides the proxy, stopped after it. */
  cleanup?: () => Promise<void>;
}

/**
 * For the calling describe block: the service with its forward-auth endpoint, an upstream, and the
 * proxy `binary()` run as `configure` (which writes its files into `dir`, a fresh temporary
 * directory) says, on free loopback ports; ready once it refuses a request without a key, stopped
 * in afterAll. Any failure to start says what the proxy printed. The getter is read by the tests.
 */
export function proxyInFront(
  name: string,
  binary: () => string,
  configure: (at: { dir: string; ports: Ports; endpoint: ForwardAuthServer }) => Launch | Promise<Launch>,
): () => ProxyUnderTest {
  let under: ProxyUnderTest;
  let upstream: Upstream | undefined;
  let proxy: ChildProcess | undefined;
  let launch: Launch | undefined;
  let dir: string | undefined;
  let endpoint: ForwardAuthServer | undefined;

  beforeAll(async () => {
    const bin = binary(); // first: a missing proxy fails before anything starts
    endpoint = await startForwardAuthServer(name);
    const admin = await endpoint.server.admin();
    upstream = await startUpstream();
    const ports = { apikeys: endpoint.server.app.httpAuthPort!, upstream: upstream.port, proxy: await freeLoopbackPort() };
    dir = mkdtempSync(join(tmpdir(), `apikeys-${name}-`));
    launch = await configure({ dir, ports, endpoint });
    if (launch.check) {
      const check = spawnSync(bin, launch.check, { encoding: 'utf8', env: launch.env });
      if (check.status !== 0) throw new Error(`${name} refused the configuration:\n${check.stdout}${check.stderr}`);
    }
    let output = '';
    proxy = spawn(bin, launch.run, { env: launch.env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [proxy.stdout, proxy.stderr]) stream?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const base = `http://127.0.0.1:${ports.proxy}`;
    const through: Through = (headers, method) => upstream!.through(base, headers, method);
    // Listening is not enough: Traefik, for one, loads its routes after opening the port.
    for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
      if (proxy.exitCode !== null) throw new Error(`${name} exited (${proxy.exitCode}):\n${output}`);
      const answer = await through({}).catch(() => undefined); // not listening yet
      if (answer?.status === 401) break;
      if (Date.now() > deadline)
        throw new Error(`${name} did not refuse a request without a key within 10 s (last status ${String(answer?.status)}):\n${output}`);
    }
    under = { endpoint, admin, through };
  });

  afterAll(async () => {
    await stopProcess(proxy);
    await launch?.cleanup?.();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await endpoint?.server.stop();
  });

  return () => under;
}

/**
 * The cases every documented proxy configuration must pass alike, as jest tests of the calling
 * describe block; `get` is read when they run (after its beforeAll). `passesPunctuatedNames`: the
 * proxy passes X.Key.Id and the like on, as docs/gateways.md says Caddy and Envoy do.
 */
export function sharedProxyCases(get: () => ProxyUnderTest, { passesPunctuatedNames = false } = {}): void {
  const create = (scopes: string[], extra: Record<string, unknown> = {}) => {
    const { endpoint, admin } = get();
    return endpoint.server.clients.keys.createKey({ name: 'k', scopes, ...extra }, admin.metadata);
  };

  // What a client would like the upstream to believe: odd cases, a repeat, and the names that CGI,
  // WSGI, PHP and others read as the dash forms (X_Key_Id is their HTTP_X_KEY_ID too).
  const forged: RawHeaders = [
    ['X-Key-Id', 'key_forged'],
    ['x-ORG-id', 'org_forged'],
    ['X-KEY-SCOPES', 'admin'],
    ['x-key-id', 'key_forged'],
  ];
  const underscored: RawHeaders = [
    ['X_Key_Id', 'key_forged'],
    ['x_org_id', 'org_forged'],
    ['X_KEY_SCOPES', 'admin'],
  ];
  // What the proxy tells the service and nobody else, as a client would send it.
  const proxyOnly: RawHeaders = [
    ['X-Service-Token', 'client_token'],
    ['x-required-scopes', 'none'],
  ];
  const credentials = (secret: string): RawHeaders[] => [[['x-api-key', secret]], [['Authorization', `Bearer ${secret}`]]];
  // GET and POST: nginx's configuration asks for "read" and "write" respectively.
  const methods = ['GET', 'POST'];

  it('lets a valid key through with its own identity, once per header, whatever identity the client sent', async () => {
    const { admin, through } = get();
    const { key, secret } = await create(['read', 'write']);
    for (const credential of credentials(secret)) {
      for (const method of methods) {
        const r = await through([...credential, ...forged], method);
        expect({ method, status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({ method, status: 200, reachedUpstream: true });
        // One line each with the service's value: neither the client's, nor both, nor both joined by a comma.
        expect(['x-key-id', 'x-org-id', 'x-key-scopes'].map((n) => valuesOf(r.seen, n))).toEqual([
          [key!.id],
          [admin.orgId],
          ['read,write'],
        ]);
      }
    }
  });

  it('refuses a forged identity without a valid key before the upstream', async () => {
    const { through } = get();
    for (const credential of [[], [['x-api-key', 'sk_live_not_a_key']], [['Authorization', 'Bearer nonsense']]] as RawHeaders[]) {
      const r = await through([...credential, ...forged, ...underscored]);
      expect({ credential, status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({
        credential,
        status: 401,
        reachedUpstream: false,
      });
    }
  });

  it('drops every header name with an underscore, so no alias of the identity headers reaches the upstream', async () => {
    const { admin, through } = get();
    const { key, secret } = await create(['read', 'write']);
    for (const credential of credentials(secret)) {
      const r = await through([...credential, ...underscored]);
      expect({ status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({ status: 200, reachedUpstream: true });
      expect(r.seen!.map(([name]) => name).filter((name) => name.includes('_'))).toEqual([]);
      expect(['x-key-id', 'x-org-id', 'x-key-scopes'].map((n) => valuesOf(r.seen, n))).toEqual([[key!.id], [admin.orgId], ['read,write']]);
    }
  });

  it(`${passesPunctuatedNames ? 'passes' : 'drops'} names with other punctuation, as the page says`, async () => {
    const { through } = get();
    const { secret } = await create(['read', 'write']);
    const punctuated: RawHeaders = [
      ['X.Key.Id', 'key_forged'],
      ['X~Org~Id', 'org_forged'],
      ['X+Key+Scopes', 'admin'],
    ];
    const r = await through([['x-api-key', secret], ...punctuated]);
    expect(r.status).toBe(200);
    const names = (raw: RawHeaders) => raw.map(([name]) => name.toLowerCase()).filter((name) => /[^a-z0-9-]/.test(name));
    expect(names(r.seen!).sort()).toEqual(passesPunctuatedNames ? names(punctuated).sort() : []);
  });

  it("never passes x-service-token or x-required-scopes to the upstream, its own or a client's", async () => {
    const { endpoint, through } = get();
    const { secret } = await create(['read', 'write']);
    for (const method of methods) {
      const r = await through([['x-api-key', secret], ...proxyOnly], method);
      expect({ method, status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({ method, status: 200, reachedUpstream: true });
      expect([valuesOf(r.seen, 'x-service-token'), valuesOf(r.seen, 'x-required-scopes')]).toEqual([[], []]);
      expect(r.seen!.filter(([, value]) => value.includes(endpoint.server.verifyToken))).toEqual([]);
    }
  });

  it("ignores a client's x-service-token, even the right one: the outcome is the one the key has", async () => {
    const { endpoint, through } = get();
    const { secret } = await create(['read', 'write']);
    for (const token of ['client_token', endpoint.server.verifyToken]) {
      const cases: [RawHeaders, number][] = [
        [[['x-api-key', secret]], 200],
        [[], 401],
        [[['x-api-key', 'sk_live_not_a_key']], 401],
      ];
      for (const [credential, status] of cases) {
        const r = await through([...credential, ['X-Service-Token', token]]);
        expect({ credential, status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({
          credential,
          status,
          reachedUpstream: status === 200,
        });
      }
    }
  });

  it('refuses a key revoked through another instance within the revocation bound (1 s) of RevokeKey answering', async () => {
    const { endpoint, admin, through } = get();
    const s = endpoint.server;
    const other = await startSecondInstance(s);
    try {
      const { key, secret } = await create(['read']);
      expect((await through({ 'x-api-key': secret })).status).toBe(200); // cached by the instance the proxy asks
      await other.clients.keys.revokeKey({ id: key!.id }, admin.metadata);
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

/**
 * The cases of a proxy configured, as docs/gateways.md's Caddy, Traefik and Envoy ones are, to
 * require "read" on every request and to pass the service's refusals on as it answered them.
 */
export function passingOnProxyCases(get: () => ProxyUnderTest): void {
  const create = (scopes: string[]) => {
    const { endpoint, admin } = get();
    return endpoint.server.clients.keys.createKey({ name: 'k', scopes }, admin.metadata);
  };

  it('refuses missing, malformed, archived and under-scoped keys before the upstream, passing on the JSON envelope', async () => {
    const { endpoint, admin, through } = get();
    const archived = await create(['read']);
    await endpoint.server.clients.keys.archiveKey({ id: archived.key!.id }, admin.metadata);
    const writeOnly = await create(['write']);
    const cases: [string, Record<string, string>, number, string][] = [
      ['missing', {}, 401, 'UNAUTHENTICATED'],
      ['malformed', { 'x-api-key': 'sk_live_not_a_key' }, 401, 'INVALID_API_KEY'],
      ['archived', { authorization: `Bearer ${archived.secret}` }, 401, 'INVALID_API_KEY'],
      // The documented configurations require "read".
      ['under-scoped', { 'x-api-key': writeOnly.secret }, 403, 'INSUFFICIENT_SCOPE'],
      // A client cannot lower the scopes the proxy asks for: the proxy's value replaces its own.
      ['under-scoped, asking for less', { 'x-api-key': writeOnly.secret, 'x-required-scopes': 'write' }, 403, 'INSUFFICIENT_SCOPE'],
    ];
    for (const [name, headers, status, reason] of cases) {
      const r = await through(headers);
      const envelope = JSON.parse(r.body) as { error?: { reason?: string } };
      expect({ name, status: r.status, reachedUpstream: r.reachedUpstream, reason: envelope.error?.reason }).toEqual({
        name,
        status,
        reachedUpstream: false,
        reason,
      });
    }
  });
}
