import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../support/server';

const ROOT = join(__dirname, '..', '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** What keyctl --json prints: proto3 JSON of the responses, as far as these tests read it. */
interface KeyJson {
  id: string;
  expireTime: string;
}
interface ErrorJson {
  error: { fieldViolations: unknown[] };
}

/** Runs keyctl as an operator would: a child process, flags and environment. */
function keyctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['tsx', 'src/cli/keyctl.ts', ...args],
      // No APIKEYS_* leaking in from the developer's shell.
      { cwd: ROOT, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
          stdout,
          // npx's own warnings (e.g. about this machine's npmrc) are not keyctl's output.
          stderr: stderr.replace(/^npm warn .*\n/gm, ''),
        }),
    );
  });
}

describe('keyctl against a real server', () => {
  let s: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    s = await startTestServer('keyctl');
    const { metadata } = await s.admin();
    env = { APIKEYS_ADDR: s.address, APIKEYS_TOKEN: String(metadata.get('authorization')[0]).replace(/^Bearer /, '') };
  });
  afterAll(() => s.stop());

  it('create → list → get → revoke → list, with tables by default and --json for scripts', async () => {
    const created = await keyctl(
      ['--json', 'create', '--name', 'billing backend', '--scopes', 'read,write', '--meta', 'team=billing', '--ttl', '30d'],
      env,
    );
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const body = JSON.parse(created.stdout) as { key: KeyJson; secret: string };
    const id = body.key.id;
    expect(id).toMatch(/^key_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(body.secret).toMatch(/^sk_live_/);
    expect(body.key).toMatchObject({
      name: 'billing backend',
      scopes: ['read', 'write'],
      metadata: { team: 'billing' },
      state: 'KEY_STATE_ACTIVE',
    });
    // --ttl 30d became an expiry about 30 days out.
    expect(Math.abs(new Date(body.key.expireTime).getTime() - (Date.now() + 30 * 86_400_000))).toBeLessThan(60_000);

    // Table mode: the secret is printed once, with a warning.
    const second = await keyctl(['create', '--name', 'second', '--scopes', 'read'], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/secret \(shown once/);
    expect(second.stdout).toMatch(/^\s+sk_live_[A-Za-z0-9]+$/m);

    const list = await keyctl(['list'], env);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATE\s+ENV\s+SCOPES\s+KEY\s+CREATED\s+LAST USED\s+EXPIRES$/);
    expect(lines).toHaveLength(3); // header + 2 keys, newest first
    expect(lines[2]).toMatch(new RegExp(`^${id}\\s+billing backend\\s+ACTIVE\\s+live\\s+read,write\\s+sk_live_`));

    const got = await keyctl(['get', id], env);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/^state\s+ACTIVE$/m);
    expect(got.stdout).toMatch(/^metadata\s+team=billing$/m);

    const revoked = await keyctl(['revoke', id, '--comment', 'leaked in a log'], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${id}`);
    expect(revoked.stdout).toMatch(/^revoked\s+\S+ by usr_\w+: leaked in a log$/m);

    const after = await keyctl(['--json', 'list'], env);
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as { keys: KeyJson[] }).keys.map((k) => k.id)).not.toContain(id);
    const withRevoked = JSON.parse((await keyctl(['--json', 'list', '--include-revoked'], env)).stdout) as { keys: KeyJson[] };
    expect(withRevoked.keys.find((k) => k.id === id)).toMatchObject({ state: 'KEY_STATE_REVOKED', revokedComment: 'leaked in a log' });
  }, 90_000);

  it('exits 3 with the reason and what to do when the server refuses, 2 on usage errors, 4 when unreachable', async () => {
    const missing = await keyctl(['get', 'key_00000000000000000000000000'], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/KEY_NOT_FOUND \(NOT_FOUND\)/);
    expect(missing.stderr).toMatch(/keyctl list/);

    const badToken = await keyctl(['list', '--token', 'not-a-token'], env);
    expect(badToken.code).toBe(3);
    expect(badToken.stderr).toMatch(/UNAUTHENTICATED/);
    expect(badToken.stderr).toMatch(/APIKEYS_TOKEN/);

    const invalid = await keyctl(['--json', 'create', '--name', ' ', '--scopes', 'read'], env);
    expect(invalid.code).toBe(3);
    const { error } = JSON.parse(invalid.stderr) as ErrorJson;
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'NAME_REQUIRED' });
    expect(error.fieldViolations[0]).toMatchObject({ field: 'name' });

    const usage = await keyctl(['create', '--scopes', 'read'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/create needs --name/);
    const noToken = await keyctl(['list'], { APIKEYS_ADDR: s.address });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/--token or set APIKEYS_TOKEN/);

    const unreachable = await keyctl(['list', '--addr', '127.0.0.1:1'], env);
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toMatch(/cannot reach the apikeys service at 127\.0\.0\.1:1/);

    const health = await keyctl(['health'], env);
    expect(health).toMatchObject({ code: 0, stdout: 'SERVING\n' });
  }, 90_000);
});
