// A real nginx (Debian's package) with the auth_request configuration of docs/gateways.md, run as
// written (addresses and token substituted), in front of a small upstream that echoes the identity
// headers it receives, pointing at the forward-auth endpoint of a real service. Never skipped:
// without nginx it fails and says how to install it (.ci/run installs it).
import type { Metadata } from '@grpc/grpc-js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';
import { startForwardAuthServer, type ForwardAuthServer } from '../support/forwardAuth';
import {
  documentedBlock,
  proxyBinary,
  sharedProxyCases,
  startUpstream,
  stopProcess,
  waitForPort,
  type ClientHeaders,
  type Upstream,
} from '../support/gateway';
import type { TestServer } from '../support/server';

/** The nginx block of docs/gateways.md with this test's addresses and token. */
const documentedConfig = (ports: { apikeys: number; upstream: number; nginx: number }, token: string) =>
  documentedBlock('nginx', [
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${ports.apikeys};`],
    ['proxy_pass http://127.0.0.1:3000;', `proxy_pass http://127.0.0.1:${ports.upstream};`],
    ['listen 80;', `listen 127.0.0.1:${ports.nginx};`],
    ['"<one of VERIFY_TOKENS>"', `"${token}"`],
  ]);

/** Everything of nginx's inside `dir`. As root, the master would hand workers to "nobody", who cannot use `dir`: they stay root. */
function wrapped(dir: string, http: string): string {
  return [
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
    http,
    '}',
  ].join('\n');
}

describe('nginx auth_request in front of an upstream, with the forward-auth endpoint', () => {
  let s: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let upstream: Upstream;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let base: string;
  let endpoint: ForwardAuthServer;

  beforeAll(async () => {
    const bin = proxyBinary('nginx', 'NGINX_BIN', 'apt-get install -y nginx-light (or nginx)');
    endpoint = await startForwardAuthServer('nginx');
    s = endpoint.server;
    admin = await s.admin();
    upstream = await startUpstream();
    const ports = {
      apikeys: s.app.httpAuthPort!,
      upstream: upstream.port,
      nginx: await freeLoopbackPort(),
    };
    dir = mkdtempSync(join(tmpdir(), 'apikeys-nginx-'));
    writeFileSync(join(dir, 'nginx.conf'), wrapped(dir, documentedConfig(ports, s.verifyToken)));
    const args = ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')];
    const check = spawnSync(bin, [...args, '-t'], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx -t refused the configuration:\n${check.stderr}`);
    nginx = spawn(bin, [...args, '-g', 'daemon off;'], { stdio: 'ignore' });
    await waitForPort(ports.nginx, nginx, () => readFileSync(join(dir, 'error.log'), 'utf8'));
    base = `http://127.0.0.1:${ports.nginx}`;
  });

  afterAll(async () => {
    await stopProcess(nginx);
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await s?.stop();
  });

  const create = async (scopes: string[], extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes, ...extra }, admin.metadata);

  const through = (headers: ClientHeaders, method = 'GET') => upstream.through(base, headers, method);

  it('refuses missing, malformed and archived keys with 401, and an under-scoped one with 403, before the upstream', async () => {
    const archived = await create(['read']);
    await s.clients.keys.archiveKey({ id: archived.key!.id }, admin.metadata);
    const readOnly = await create(['read']);
    const cases: [string, Record<string, string>, string, number][] = [
      ['missing', {}, 'GET', 401],
      ['malformed', { 'x-api-key': 'sk_live_not_a_key' }, 'GET', 401],
      ['malformed bearer', { authorization: 'Bearer nonsense' }, 'GET', 401],
      ['archived', { 'x-api-key': archived.secret }, 'GET', 401],
      ['under-scoped (POST needs write)', { 'x-api-key': readOnly.secret }, 'POST', 403],
    ];
    for (const [name, headers, method, status] of cases) {
      const r = await through(headers, method);
      expect({ name, status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({ name, status, reachedUpstream: false });
    }
    expect((await through({ 'x-api-key': readOnly.secret })).status).toBe(200);
  });

  sharedProxyCases(() => ({ endpoint, admin, through }));
});
