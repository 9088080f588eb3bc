import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
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

/** Runs keyctl as an operator would: a child process, flags, environment and what is piped in. */
function keyctl(args: string[], env: Record<string, string> = {}, input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
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
    child.stdin?.end(input);
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

  it('list narrows by --workspace, --created-by, --env and --scope; usage shows days by result, of a key or the organization', async () => {
    const userId = newId('usr');
    const token = await s.userToken({ sub: userId, orgId: newId('org') });
    const own = { ...env, APIKEYS_TOKEN: token };
    const create = async (extra: Record<string, unknown>) =>
      (await s.clients.keys.createKey({ name: 'cli', scopes: ['read'], ...extra }, bearer(token))).key!;
    const wanted = await create({ workspaceId: 'ws-cli', environment: 'test', scopes: ['read', 'billing'] });
    const other = await create({ workspaceId: 'ws-cli', scopes: ['read', 'billing'] });
    await create({});
    const ids = async (args: string[]) =>
      (JSON.parse((await keyctl(['--json', 'list', ...args], own)).stdout) as { keys: KeyJson[] }).keys.map((k) => k.id);
    expect(await ids(['--workspace', 'ws-cli', '--env', 'test', '--scope', 'billing'])).toEqual([wanted.id]);
    expect(await ids(['--workspace', 'ws-cli', '--created-by', userId])).toEqual([other.id, wanted.id]);
    const refused = await keyctl(['list', '--env', 'prod'], own);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/INVALID_ENVIRONMENT/);

    // Counts as two instances would have flushed them, on two days.
    const count = (keyId: string, day: string, instance: string, code: string, n: number) => ({
      _id: `${keyId}|${day}|${instance}|${code}`,
      org_id: wanted.orgId,
      key_id: keyId,
      day,
      code: code as 'VALID',
      count: n,
    });
    await s.collections.usage.insertMany([
      count(wanted.id, '2026-01-05', 'i1', 'VALID', 3),
      count(wanted.id, '2026-01-05', 'i2', 'VALID', 2),
      count(wanted.id, '2026-01-05', 'i2', 'RATE_LIMITED', 1),
      count(other.id, '2026-01-06', 'i1', 'REVOKED', 4),
    ]);
    const table = await keyctl(['usage', wanted.id, '--from', '2026-01-01', '--to', '2026-01-31'], own);
    expect(table.code).toBe(0);
    expect(table.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^DAY\s+TOTAL\s+VALID\s+EXPIRED\s+REVOKED\s+ARCHIVED\s+INSUFFICIENT_SCOPE\s+RATE_LIMITED$/),
      expect.stringMatching(/^2026-01-05\s+6\s+5\s+0\s+0\s+0\s+0\s+1$/),
    ]);
    const json = await keyctl(['--json', 'usage', '--from', '2026-01-01', '--to', '2026-01-31'], own);
    expect(JSON.parse(json.stdout)).toEqual({
      days: [
        {
          day: '2026-01-05',
          total: 6,
          counts: [
            { code: 'VERIFY_CODE_VALID', count: 5 },
            { code: 'VERIFY_CODE_RATE_LIMITED', count: 1 },
          ],
        },
        { day: '2026-01-06', total: 4, counts: [{ code: 'VERIFY_CODE_REVOKED', count: 4 }] },
      ],
    });
    expect((await keyctl(['usage', '--from', '2026-02-01', '--to', '2026-02-02'], own)).stdout).toBe('(no verifications)\n');
    const twoKeys = await keyctl(['usage', wanted.id, other.id], own);
    expect(twoKeys.code).toBe(2);
    expect(twoKeys.stderr).toMatch(/unexpected argument/);
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

  it('org get and org set-limit (staff), keys lookup and keys report-leaked with secrets piped in, never printed', async () => {
    const { orgId, metadata } = await s.admin();
    const { key, secret } = await s.clients.keys.createKey({ name: 'leaky', scopes: ['read'] }, metadata);
    const staffToken = await s.userToken({ email: 'ops@staff.example', emailVerified: true });
    const staff = { ...env, APIKEYS_TOKEN: staffToken, APIKEYS_ORG: orgId };

    const set = await keyctl(['org', 'set-limit', '5'], staff);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(set.stdout).toMatch(new RegExp(`^${orgId}\\s+5\\s+1\\s+4$`, 'm'));
    const got = JSON.parse((await keyctl(['--json', 'org', 'get'], staff)).stdout) as { organization: Record<string, unknown> };
    expect(got.organization).toEqual({ id: orgId, keyLimit: 5, keyLimitSet: true, activeKeys: 1, freePlaces: 4 });

    const service = { ...env, APIKEYS_TOKEN: s.verifyToken };
    const found = await keyctl(['keys', 'lookup'], service, `${secret}\n`);
    expect(found).toMatchObject({ code: 0, stderr: '' });
    expect(found.stdout).toMatch(new RegExp(`^id\\s+${key!.id}$`, 'm'));
    expect(found.stdout).not.toContain(secret.slice(12));

    const reported = await keyctl(
      ['--json', 'keys', 'report-leaked', '--reporter', 'ci-scan', '--location', 'build log 42'],
      service,
      `${secret}\nsk_live_nope\n`,
    );
    expect(reported).toMatchObject({ code: 0, stderr: '' });
    const body = JSON.parse(reported.stdout) as { reportId: string; results: unknown[] };
    expect(body.results).toEqual([{ outcome: 'LEAK_OUTCOME_REVOKED', keyId: key!.id, orgId }, { outcome: 'LEAK_OUTCOME_UNKNOWN' }]);
    expect(reported.stdout).not.toContain(secret.slice(12));
    const again = await keyctl(['keys', 'report-leaked', '--reporter', 'ci-scan'], service, secret);
    expect(again.stdout).toMatch(new RegExp(`^1\\s+ALREADY_ENDED\\s+${key!.id}\\s+${orgId}$`, 'm'));
    expect(again.stdout).toMatch(/^report rpt_\w+$/m);
    expect((await s.clients.keys.getKey({ id: key!.id }, metadata)).key).toMatchObject({
      revokedBy: `leak_report:${body.reportId}`,
      revokedComment: 'leak reported by ci-scan at build log 42',
    });

    const denied = await keyctl(['org', 'set-limit', '9'], { ...env, APIKEYS_ORG: '' });
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED/);
    const nothingPiped = await keyctl(['keys', 'lookup'], service);
    expect(nothingPiped.code).toBe(2);
    expect(nothingPiped.stderr).toMatch(/no secret on standard input/);
  }, 90_000);
});
