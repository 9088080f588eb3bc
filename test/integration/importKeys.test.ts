// ImportKeys and foreign key formats, against the real server configured with the three formats
// docs/configuration.md shows: imported keys verify like ours, live through the whole lifecycle,
// count against the limit, never collide, and never leave their secret anywhere.
import { Metadata, status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandStartedEvent } from 'mongodb';
import type { Io } from '../../src/cli/command';
import { keyctl } from '../../src/cli/keyctl';
import { bearer } from '../../src/client/promiseClient';
import { statusDetails } from '../../src/client/statusDetails';
import { KeyVerifier } from '../../src/client/verifier';
import { newId } from '../../src/domain/ids';
import { hashSecret } from '../../src/domain/keyFormat';
import { KeyState, type Key } from '../../src/gen/apikeys/v1/key';
import type { ImportedKey, ImportKeyResult } from '../../src/gen/apikeys/v1/key_service';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure } from '../support/calls';
import { FOREIGN_KEY_FORMATS, FORMATS, foreignSecret, type FormatName } from '../support/foreignFormats';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const HOUR = 3_600_000;
const { VERIFY_CODE_VALID: VALID, VERIFY_CODE_MALFORMED: MALFORMED, VERIFY_CODE_NOT_FOUND: NOT_FOUND } = VerifyCode;

let s: TestServer;
let service: Metadata;
/** Every secret this file imports: none may appear in logs or storage. */
const secrets: string[] = [];

beforeAll(async () => {
  s = await startTestServer('import_keys', {
    FOREIGN_KEY_FORMATS,
    ORG_KEY_LIMIT: '1000',
    LOG_LEVEL: 'trace',
    // No sweep while reads are counted below (it runs every 5 min at most).
    RETENTION_SWEEP_INTERVAL_MS: '300000',
  });
  service = bearer(s.verifyToken);
});
afterAll(() => s.stop());

const secretOf = (format: FormatName, environment: 'live' | 'test' = 'live') => {
  const secret = foreignSecret(format, environment);
  secrets.push(secret);
  return secret;
};
const verify = (key: string, requiredScopes: string[] = []) => s.clients.verify.verifyKey({ key, requiredScopes }, service);
const importKeys = async (md: Metadata, keys: Array<Partial<ImportedKey>>) =>
  (await s.clients.keys.importKeys({ keys: keys.map((k) => ({ name: 'imported', scopes: ['read'], ...k })) }, md)).results;
const withSecret = (secret: string, format: FormatName): Partial<ImportedKey> => ({
  secretOrHash: { $case: 'secret', value: secret },
  format,
});
const keyOf = (r: ImportKeyResult): Key => {
  if (r.result?.$case !== 'key') throw new Error(`expected a key, got ${JSON.stringify(r.result)}`);
  return r.result.value;
};
/** An entry's refusal: its code, ErrorInfo reason and metadata, and its message. */
const errorOf = (r: ImportKeyResult) => {
  if (r.result?.$case !== 'error') throw new Error(`expected an error, got ${JSON.stringify(r.result)}`);
  const info = statusDetails(r.result.value).errorInfo;
  return { code: r.result.value.code, reason: info?.reason, metadata: info?.metadata, message: r.result.value.message };
};

describe.each(['ffy', 'fnp', 'stripe'] as const)('an imported %s key', (format) => {
  it('verifies with its scopes and metadata, rotates to one of ours (both valid during the overlap), and revokes', async () => {
    const admin = await s.admin();
    const secret = secretOf(format);
    const createTime = new Date(Date.now() - 400 * 86_400_000);
    const lastUsedTime = new Date(Date.now() - HOUR);
    // Presented before the import: NOT_FOUND, and cached as such.
    expect((await verify(secret)).code).toBe(NOT_FOUND);

    const [result] = await importKeys(admin.metadata, [
      {
        ...withSecret(secret, format),
        name: `from ${format}`,
        scopes: ['read', 'write'],
        metadata: { plan: 'pro' },
        createTime,
        lastUsedTime,
      },
    ]);
    const key = keyOf(result);
    const hash = hashSecret(secret);
    expect(key).toMatchObject({
      orgId: admin.orgId,
      name: `from ${format}`,
      environment: 'live',
      state: KeyState.KEY_STATE_ACTIVE,
      start: FORMATS[format].prefix,
      maskedKey: `${FORMATS[format].prefix}…${secret.slice(-4)}`,
      fingerprint: hash.slice(0, 6),
      createTime,
      lastUsedTime,
    });
    // The cached NOT_FOUND was dropped by the import, on this instance at once.
    expect(await verify(secret, ['write'])).toMatchObject({
      valid: true,
      code: VALID,
      keyId: key.id,
      orgId: admin.orgId,
      scopes: ['read', 'write'],
      metadata: { plan: 'pro' },
    });
    expect((await s.clients.keys.getKey({ id: key.id }, admin.metadata)).key).toMatchObject({ id: key.id, lastUsedTime, createTime });
    expect((await s.clients.keys.listKeys({}, admin.metadata)).keys.map((k) => k.id)).toEqual([key.id]);
    const stored = await s.collections.keys.findOne({ _id: key.id });
    expect(stored).toMatchObject({ hash, format });

    const rotated = await s.clients.keys.rotateKey({ id: key.id, overlap: { seconds: 3600, nanos: 0 } }, admin.metadata);
    expect(rotated.secret).toMatch(/^sk_live_[0-9A-Za-z]{38}$/);
    expect(rotated.key).toMatchObject({ rotatedFrom: key.id, scopes: ['read', 'write'], metadata: { plan: 'pro' } });
    expect(rotated.previousKey).toMatchObject({ id: key.id, replacedBy: rotated.key!.id, state: KeyState.KEY_STATE_ACTIVE });
    expect(await verify(rotated.secret)).toMatchObject({ code: VALID, keyId: rotated.key!.id });
    expect(await verify(secret)).toMatchObject({ code: VALID, keyId: key.id });
    expect((await s.collections.keys.findOne({ _id: rotated.key!.id }))!.format).toBeUndefined();

    await s.clients.keys.revokeKey({ id: key.id, comment: 'migration done' }, admin.metadata);
    expect(await verify(secret)).toMatchObject({ valid: false, code: VerifyCode.VERIFY_CODE_REVOKED, keyId: key.id });
    expect((await verify(rotated.secret)).code).toBe(VALID);
  });
});

describe('imported keys afterwards', () => {
  it('update, archive, reactivate and delete like ours', async () => {
    const admin = await s.admin();
    const secret = secretOf('ffy', 'test');
    const key = keyOf((await importKeys(admin.metadata, [withSecret(secret, 'ffy')]))[0]);
    expect(key.environment).toBe('test');
    const renamed = await s.clients.keys.updateKey(
      { key: { id: key.id, name: 'renamed', scopes: ['read', 'billing'] }, updateMask: ['name', 'scopes'] },
      admin.metadata,
    );
    expect(renamed.key).toMatchObject({ name: 'renamed', scopes: ['read', 'billing'] });
    expect(await verify(secret, ['billing'])).toMatchObject({ code: VALID });
    await s.clients.keys.archiveKey({ id: key.id }, admin.metadata);
    expect((await verify(secret)).code).toBe(VerifyCode.VERIFY_CODE_ARCHIVED);
    await s.clients.keys.reactivateKey({ id: key.id }, admin.metadata);
    expect((await verify(secret)).code).toBe(VALID);
    await s.clients.keys.deleteKey({ id: key.id }, admin.metadata);
    expect((await verify(secret)).code).toBe(NOT_FOUND);
  });

  it('authenticate as API keys, by bearer token and by x-api-key', async () => {
    const admin = await s.admin();
    const secret = secretOf('stripe');
    const key = keyOf((await importKeys(admin.metadata, [{ ...withSecret(secret, 'stripe'), scopes: ['read'] }]))[0]);
    const viaHeader = new Metadata();
    viaHeader.set('x-api-key', secret);
    for (const caller of [bearer(secret), viaHeader]) {
      expect((await s.clients.keys.getKey({ id: key.id }, caller)).key!.id).toBe(key.id);
    }
  });
});

describe('garbage in a foreign prefix', () => {
  it('1000 secrets that fit no format answer MALFORMED, with no storage read at all', async () => {
    const reads: string[] = [];
    const listen = (e: CommandStartedEvent) => {
      const collection = String(e.command[e.commandName] ?? '');
      // The change-log poll is the only read that runs meanwhile by itself.
      if (['find', 'aggregate', 'count', 'distinct', 'getMore'].includes(e.commandName) && collection !== 'key_changes') {
        reads.push(`${e.commandName} ${collection}`);
      }
    };
    const garbage = [
      ...Array.from({ length: 250 }, (_, i) => `ffy_live_${'0OIl'.repeat(6)}${i}`), // not base58
      ...Array.from({ length: 250 }, () => `ffy_live_${randomBytes(12).toString('hex').slice(0, 19)}`), // one short of ffy's 20
      ...Array.from({ length: 250 }, () => `fnp_${randomBytes(16).toString('hex').toUpperCase()}`),
      ...Array.from({ length: 150 }, () => `sk_live_${randomBytes(9).toString('base64url').replace(/[-_]/g, 'a')}`), // too short for stripe, and not ours
      ...Array.from({ length: 100 }, () => randomBytes(40).toString('latin1')),
    ];
    expect(garbage).toHaveLength(1000);
    const lookupsBefore = s.app.storage.counters.keyLookups;
    s.app.storage.client.on('commandStarted', listen);
    try {
      const answers = await Promise.all(garbage.map((g) => verify(g)));
      expect(answers.every((a) => a.code === MALFORMED && !a.valid && a.keyId === '')).toBe(true);
      expect(reads).toEqual([]);
      expect(s.app.storage.counters.keyLookups).toBe(lookupsBefore);
      // The same watch sees the one read a well-formed unknown key costs.
      expect((await verify(foreignSecret('ffy'))).code).toBe(NOT_FOUND);
      expect(reads).toEqual(['find api_keys']);
    } finally {
      s.app.storage.client.off('commandStarted', listen);
    }
  });
});

describe('ImportKeys refusals and outcomes', () => {
  it('refuses the whole call, writing nothing, for a bad batch size, an unknown format or a bad field', async () => {
    const admin = await s.admin();
    const ok = withSecret(secretOf('fnp'), 'fnp');
    const cases: Array<[Array<Partial<ImportedKey>>, string[]]> = [
      [[], ['keys:INVALID_ARGUMENT']],
      [Array.from({ length: 101 }, () => withSecret(foreignSecret('fnp'), 'fnp')), ['keys:INVALID_ARGUMENT']],
      [[ok, { ...withSecret(secretOf('ffy'), 'unkey' as FormatName) }], ['keys[1].format:INVALID_KEY_FORMAT']],
      [[ok, { ...withSecret(secretOf('ffy'), 'ffy'), scopes: [] }], ['keys[1].scopes:INVALID_SCOPES']],
    ];
    for (const [keys, fields] of cases) {
      const f = await failure(
        s.clients.keys.importKeys({ keys: keys.map((k) => ({ name: 'x', scopes: ['read'], ...k })) }, admin.metadata),
      );
      expect(f).toMatchObject({ code: status.INVALID_ARGUMENT, fields });
    }
    expect(await s.collections.keys.countDocuments({ org_id: admin.orgId })).toBe(0);
    const events = await s.collections.audit.find({ org_id: admin.orgId, action: 'key.import' }).toArray();
    expect(events.map((e) => [e.outcome, e.key_id])).toEqual([
      ['INVALID_ARGUMENT', null],
      ['INVALID_ARGUMENT', null],
      ['INVALID_KEY_FORMAT', null],
      ['INVALID_SCOPES', null],
    ]);
  });

  it('gives each entry past the limit its own RESOURCE_EXHAUSTED/PLAN_LIMIT_REACHED and imports the others', async () => {
    const admin = await s.admin();
    await s.collections.organizations.insertOne({ _id: admin.orgId, key_limit: 3, created_at: new Date() });
    await s.clients.keys.createKey({ name: 'ours', scopes: ['read'] }, admin.metadata);
    const batch = Array.from({ length: 4 }, () => secretOf('fnp'));
    const results = await importKeys(
      admin.metadata,
      batch.map((secret) => withSecret(secret, 'fnp')),
    );
    expect(results.map((r) => r.result?.$case)).toEqual(['key', 'key', 'error', 'error']);
    for (const r of results.slice(2)) {
      expect(errorOf(r)).toMatchObject({ code: status.RESOURCE_EXHAUSTED, reason: 'PLAN_LIMIT_REACHED', metadata: { limit: '3' } });
    }
    expect(await s.collections.keys.countDocuments({ org_id: admin.orgId })).toBe(3);
    expect(await s.collections.slots.countDocuments({ org_id: admin.orgId })).toBe(3);
    expect((await verify(batch[3])).code).toBe(NOT_FOUND);
    const events = await s.collections.audit.find({ org_id: admin.orgId, action: 'key.import' }).sort({ time: 1, _id: 1 }).toArray();
    expect(events.map((e) => e.outcome)).toEqual(['OK', 'OK', 'PLAN_LIMIT_REACHED', 'PLAN_LIMIT_REACHED']);
    expect(events.slice(0, 2).map((e) => e.key_id)).toEqual(results.slice(0, 2).map((r) => keyOf(r).id));
  });

  it('answers ALREADY_EXISTS for a stored hash, in this organization or another, naming neither', async () => {
    const first = await s.admin();
    const other = await s.admin();
    const secret = secretOf('ffy');
    const key = keyOf((await importKeys(first.metadata, [withSecret(secret, 'ffy')]))[0]);
    // One of our own keys is a stripe-style secret too (sk_live_ + 38 base62): same hash, same answer.
    const ours = (await s.clients.keys.createKey({ name: 'ours', scopes: ['read'] }, first.metadata)).secret;
    secrets.push(ours);
    for (const md of [first.metadata, other.metadata]) {
      const results = await importKeys(md, [withSecret(secret, 'ffy'), withSecret(ours, 'stripe')]);
      for (const r of results) {
        const e = errorOf(r);
        expect(e).toMatchObject({ code: status.ALREADY_EXISTS, reason: 'KEY_ALREADY_EXISTS' });
        expect(e.metadata).toEqual({});
        expect(e.message).not.toContain(key.id);
        expect(e.message).not.toContain(first.orgId);
      }
    }
    expect(await s.collections.keys.countDocuments({ org_id: other.orgId })).toBe(0);
    expect(await s.collections.slots.countDocuments({ org_id: other.orgId })).toBe(0);
    expect(await verify(secret)).toMatchObject({ code: VALID, keyId: key.id });
  });

  it('imports the same key from its secret or from its SHA-256', async () => {
    const admin = await s.admin();
    const secret = secretOf('fnp');
    const [byHash] = await importKeys(admin.metadata, [
      { secretOrHash: { $case: 'secretSha256', value: hashSecret(secret) }, format: 'fnp', start: secret.slice(0, 8) },
    ]);
    const key = keyOf(byHash);
    expect(key).toMatchObject({
      start: secret.slice(0, 8),
      maskedKey: `${secret.slice(0, 8)}…`,
      fingerprint: hashSecret(secret).slice(0, 6),
    });
    expect(await verify(secret)).toMatchObject({ code: VALID, keyId: key.id });
    expect(errorOf((await importKeys(admin.metadata, [withSecret(secret, 'fnp')]))[0]).reason).toBe('KEY_ALREADY_EXISTS');
  });

  it('records the real actor and the staff member acting as the organization', async () => {
    const target = await s.admin();
    const staffId = newId('usr');
    const staff = bearer(await s.userToken({ sub: staffId, orgId: newId('org'), email: 'ops@staff.example', emailVerified: true }), {
      'x-organization-id': target.orgId,
    });
    const key = keyOf((await importKeys(staff, [withSecret(secretOf('ffy'), 'ffy')]))[0]);
    expect(key).toMatchObject({ orgId: target.orgId, createdBy: staffId });
    const events = await s.collections.audit.find({ org_id: target.orgId, action: 'key.import' }).toArray();
    expect(events.map((e) => [e.actor, e.acting_as, e.key_id, e.outcome, e.method])).toEqual([
      [staffId, 'ops@staff.example', key.id, 'OK', '/apikeys.v1.KeyService/ImportKeys'],
    ]);
  });
});

describe('announcing an imported key', () => {
  it('drops NOT_FOUND cached for its hash on another instance and in a KeyVerifier (WatchKeyChanges), which checks formats locally', async () => {
    const b = await startSecondInstance(s, { FOREIGN_KEY_FORMATS });
    const verifier = new KeyVerifier({ address: s.address, token: s.verifyToken, foreignFormats: Object.values(FORMATS) });
    const unaware = new KeyVerifier({ address: s.address, token: s.verifyToken });
    try {
      const admin = await s.admin();
      const secret = secretOf('ffy');
      const onB = () => b.clients.verify.verifyKey({ key: secret }, service);
      expect((await onB()).code).toBe(NOT_FOUND);
      expect((await verifier.verify(secret)).code).toBe('NOT_FOUND');
      const answeredLocally = verifier.stats.local;
      expect((await verifier.verify(secret)).code).toBe('NOT_FOUND');
      expect(verifier.stats.local).toBe(answeredLocally + 1);

      const key = keyOf((await importKeys(admin.metadata, [withSecret(secret, 'ffy')]))[0]);
      expect(await s.collections.changes.findOne({ key_id: key.id })).toMatchObject({ kind: 'created', hash: hashSecret(secret) });
      await until('instance B answers VALID', async () => (await onB()).code === VALID);
      await until('the KeyVerifier answers VALID', async () => (await verifier.verify(secret)).valid);

      // Without the formats, the client refuses the imported key itself, without a call.
      const calls = unaware.stats.remote;
      expect((await unaware.verify(secret)).code).toBe('MALFORMED');
      expect(unaware.stats.remote).toBe(calls);
    } finally {
      await verifier.close();
      await unaware.close();
      await b.stop();
    }
  });

  it('a KeyVerifier refuses invalid foreignFormats at construction', () => {
    expect(
      () => new KeyVerifier({ address: s.address, token: s.verifyToken, foreignFormats: [{ name: 'x', prefix: 'x_', pattern: '(' }] }),
    ).toThrow(/invalid foreignFormats: \[0\]\.pattern: does not compile/);
  });
});

describe('keyctl import', () => {
  const run = async (args: string[]) => {
    let out = '';
    let err = '';
    const admin = await s.userToken();
    const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env: { APIKEYS_ADDR: s.address, APIKEYS_TOKEN: admin } };
    const code = await keyctl(args, io);
    return { code, out, err };
  };
  const dir = mkdtempSync(join(tmpdir(), 'keyctl-import-'));

  it('imports a JSON-lines file (secrets and hashes, snake_case or camelCase) and prints each outcome with --json', async () => {
    const a = secretOf('ffy');
    const b = secretOf('fnp');
    const file = join(dir, 'keys.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({
          secret: a,
          format: 'ffy',
          name: 'a',
          scopes: ['read'],
          metadata: { from: 'ffy' },
          last_used_time: '2025-01-02T03:04:05Z',
        }),
        '',
        JSON.stringify({ secretSha256: hashSecret(b), format: 'fnp', name: 'b', scopes: ['read', 'write'] }),
      ].join('\n'),
    );
    const r = await run(['--json', 'import', file]);
    expect(r).toMatchObject({ code: 0, err: '' });
    const body = JSON.parse(r.out) as { results: Array<{ key: { id: string; name: string; lastUsedTime?: string } }> };
    expect(body.results.map((x) => x.key.name)).toEqual(['a', 'b']);
    expect(body.results[0].key.lastUsedTime).toBe('2025-01-02T03:04:05.000Z');
    expect(await verify(a)).toMatchObject({ code: VALID, keyId: body.results[0].key.id, metadata: { from: 'ffy' } });
    expect(await verify(b)).toMatchObject({ code: VALID, keyId: body.results[1].key.id });
    expect(r.out).not.toContain(a);
  });

  it('prints a table of outcomes from a JSON array, and exits 3 when a key was refused', async () => {
    const fresh = secretOf('stripe');
    const file = join(dir, 'keys.json');
    writeFileSync(
      file,
      JSON.stringify([
        { secret: fresh, format: 'stripe', name: 'fresh', scopes: ['read'] },
        { secret: fresh, format: 'stripe', name: 'again', scopes: ['read'] },
      ]),
    );
    // The same secret twice in one call is a refusal of the call: nothing written.
    const refused = await run(['import', file]);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/keys\[1\]\.secret: the same key as keys\[0\]/);
    writeFileSync(file, JSON.stringify({ keys: [{ secret: fresh, format: 'stripe', name: 'fresh', scopes: ['read'] }] }));
    expect((await run(['import', file])).code).toBe(0);
    const again = await run(['import', file]);
    expect(again.code).toBe(3);
    expect(again.out).toMatch(/^#\s+RESULT\s+NAME\s+KEY\n1\s+KEY_ALREADY_EXISTS\s/);
    expect(again.out + again.err).not.toContain(fresh);
  });

  it('refuses a file that is not JSON without quoting it (it holds secrets)', async () => {
    const secret = secretOf('ffy');
    const file = join(dir, 'broken.jsonl');
    writeFileSync(file, `{"secret": "${secret}", "format": "ffy"\n`);
    const r = await run(['import', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('line 1 is not a JSON object');
    expect(r.err).not.toContain(secret);
  });
});

describe('secrets', () => {
  it('never appear in the logs, the audit trail or storage (nor their last 16 characters)', async () => {
    expect(secrets.length).toBeGreaterThan(20);
    const stored = JSON.stringify([
      await s.collections.keys.find().toArray(),
      await s.collections.audit.find().toArray(),
      await s.collections.changes.find().toArray(),
    ]);
    const logs = s.logs.join('');
    expect(logs).toContain('ImportKeys');
    for (const secret of secrets) {
      for (const where of [logs, stored]) {
        expect(where).not.toContain(secret);
        expect(where).not.toContain(secret.slice(-16));
      }
    }
  });
});
