// A real Caddy (Debian's package) with the forward_auth configuration of docs/gateways.md, run as
// written (addresses substituted, the token from Caddy's environment), in front of a small upstream,
// pointing at the forward-auth endpoint of a real service. Never skipped: without Caddy it fails
// and says how to install it (.ci/run installs it).
import type { Metadata } from '@grpc/grpc-js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';
import { startForwardAuthServer, type ForwardAuthServer } from '../support/forwardAuth';
import { documentedBlock, proxyBinary, sharedProxyCases, startUpstream, stopProcess, waitForPort, type Upstream } from '../support/gateway';
import type { TestServer } from '../support/server';

/** The Caddyfile of docs/gateways.md on this test's ports, behind global options that keep Caddy inside `dir` and on plain HTTP. */
function caddyfile(dir: string, ports: { apikeys: number; upstream: number; caddy: number }): string {
  const site = documentedBlock('caddy', [
    ['api.example.com {', `http://127.0.0.1:${ports.caddy} {`],
    ['forward_auth 127.0.0.1:8080 {', `forward_auth 127.0.0.1:${ports.apikeys} {`],
    ['reverse_proxy 127.0.0.1:3000', `reverse_proxy 127.0.0.1:${ports.upstream}`],
  ]);
  return `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}/data\n}\n\n${site}`;
}

describe('Caddy forward_auth in front of an upstream, with the forward-auth endpoint', () => {
  let s: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let upstream: Upstream;
  let caddy: ChildProcess | undefined;
  let dir: string;
  let base: string;
  let endpoint: ForwardAuthServer;
  let output = '';

  beforeAll(async () => {
    const bin = proxyBinary('caddy', 'CADDY_BIN', 'apt-get install -y caddy');
    endpoint = await startForwardAuthServer('caddy');
    s = endpoint.server;
    admin = await s.admin();
    upstream = await startUpstream();
    const ports = { apikeys: s.app.httpAuthPort!, upstream: upstream.port, caddy: await freeLoopbackPort() };
    dir = mkdtempSync(join(tmpdir(), 'apikeys-caddy-'));
    const config = join(dir, 'Caddyfile');
    writeFileSync(config, caddyfile(dir, ports));
    // Caddy reads {$APIKEYS_SERVICE_TOKEN} from its environment; HOME and XDG_* keep its files in `dir`.
    const env = { ...process.env, APIKEYS_SERVICE_TOKEN: s.verifyToken, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
    const check = spawnSync(bin, ['validate', '--config', config, '--adapter', 'caddyfile'], { encoding: 'utf8', env });
    if (check.status !== 0) throw new Error(`caddy validate refused the configuration:\n${check.stderr}`);
    caddy = spawn(bin, ['run', '--config', config, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [caddy.stdout, caddy.stderr]) stream?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitForPort(ports.caddy, caddy, () => output);
    base = `http://127.0.0.1:${ports.caddy}`;
  });

  afterAll(async () => {
    await stopProcess(caddy);
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await s?.stop();
  });

  const create = async (scopes: string[], extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes, ...extra }, admin.metadata);
  const through = (headers: Record<string, string>, method = 'GET') => upstream.through(base, headers, method);

  it('lets a valid key through, with x-key-id, x-org-id and x-key-scopes replacing any the client sent', async () => {
    const { key, secret } = await create(['read', 'write']);
    for (const credential of [{ 'x-api-key': secret }, { authorization: `Bearer ${secret}` }] as Record<string, string>[]) {
      for (const method of ['GET', 'POST']) {
        const r = await through({ ...credential, 'x-key-id': 'key_spoofed', 'x-org-id': 'org_spoofed', 'x-key-scopes': 'admin' }, method);
        expect({ status: r.status, reachedUpstream: r.reachedUpstream }).toEqual({ status: 200, reachedUpstream: true });
        expect([r.seen?.['x-key-id'], r.seen?.['x-org-id'], r.seen?.['x-key-scopes']]).toEqual([key!.id, admin.orgId, 'read,write']);
      }
    }
  });

  it('refuses missing, malformed, archived and under-scoped keys before the upstream, passing on the JSON envelope', async () => {
    const archived = await create(['read']);
    await s.clients.keys.archiveKey({ id: archived.key!.id }, admin.metadata);
    const writeOnly = await create(['write']);
    const cases: [string, Record<string, string>, number, string][] = [
      ['missing', {}, 401, 'UNAUTHENTICATED'],
      ['malformed', { 'x-api-key': 'sk_live_not_a_key' }, 401, 'INVALID_API_KEY'],
      ['archived', { authorization: `Bearer ${archived.secret}` }, 401, 'INVALID_API_KEY'],
      // The documented site requires "read".
      ['under-scoped', { 'x-api-key': writeOnly.secret }, 403, 'INSUFFICIENT_SCOPE'],
      // A client cannot lower the scopes the proxy asks for: header_up replaces its value.
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

  sharedProxyCases(() => ({ endpoint, admin: admin.metadata, through }));
});
