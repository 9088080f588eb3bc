import { status, type Metadata } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { CommandStartedEvent } from 'mongodb';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { KeyState, type Key } from '../../src/gen/apikeys/v1/key';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure, outcome } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ENCRYPTION_KEY = randomBytes(32).toString('base64');

let s: TestServer;
let service: Metadata;
beforeAll(async () => {
  s = await startTestServer('lifecycle', { SECRET_ENCRYPTION_KEY: ENCRYPTION_KEY, ORG_KEY_LIMIT: '50' });
  service = bearer(s.verifyToken);
});
afterAll(() => s.stop());

async function newOrg() {
  const { orgId, metadata } = await s.admin();
  const create = async (extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes: ['read'], ...extra }, metadata);
  return { orgId, metadata, create };
}
const verifyCode = async (secret: string) => (await s.clients.verify.verifyKey({ key: secret }, service)).code;

describe('state transitions', () => {
  it('archive → verification fails at once → reactivate → verifies again', async () => {
    const { metadata, create } = await newOrg();
    const { key, secret } = await create();
    expect(await verifyCode(secret)).toBe(VerifyCode.VERIFY_CODE_VALID); // now cached
    const archived = (await s.clients.keys.archiveKey({ id: key!.id }, metadata)).key!;
    expect(archived.state).toBe(KeyState.KEY_STATE_ARCHIVED);
    expect(archived.archiveTime).toBeInstanceOf(Date);
    expect(await verifyCode(secret)).toBe(VerifyCode.VERIFY_CODE_ARCHIVED);
    // Archived keys leave the default listing and come back with include_archived.
    expect((await s.clients.keys.listKeys({}, metadata)).keys).toHaveLength(0);
    expect((await s.clients.keys.listKeys({ includeArchived: true }, metadata)).keys).toHaveLength(1);
    const back = (await s.clients.keys.reactivateKey({ id: key!.id }, metadata)).key!;
    expect(back.state).toBe(KeyState.KEY_STATE_ACTIVE);
    expect(await verifyCode(secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
  });

  it('refuses every illegal transition with its code and reason', async () => {
    const { metadata, create } = await newOrg();
    const id = async (extra: Record<string, unknown> = {}) => (await create(extra)).key!.id;
    const archived = await id();
    await s.clients.keys.archiveKey({ id: archived }, metadata);
    const revoked = await id();
    await s.clients.keys.revokeKey({ id: revoked }, metadata);
    const rotatedAway = await id();
    await s.clients.keys.rotateKey({ id: rotatedAway, overlap: { seconds: 60, nanos: 0 } }, metadata);
    const expired = await id();
    await s.collections.keys.updateOne({ _id: expired }, { $set: { expires_at: new Date(Date.now() - 1000) } });
    const active = await id();
    const deleted = await id();
    await s.clients.keys.deleteKey({ id: deleted }, metadata);

    const k = s.clients.keys;
    const cases: Array<[string, Promise<unknown>, string]> = [
      ['archive archived', k.archiveKey({ id: archived }, metadata), 'FAILED_PRECONDITION/KEY_ARCHIVED'],
      ['archive revoked', k.archiveKey({ id: revoked }, metadata), 'FAILED_PRECONDITION/KEY_REVOKED'],
      ['reactivate active', k.reactivateKey({ id: active }, metadata), 'FAILED_PRECONDITION/KEY_NOT_ARCHIVED'],
      ['reactivate revoked', k.reactivateKey({ id: revoked }, metadata), 'FAILED_PRECONDITION/KEY_REVOKED'],
      ['revoke revoked', k.revokeKey({ id: revoked }, metadata), 'FAILED_PRECONDITION/KEY_REVOKED'],
      [
        'update revoked',
        k.updateKey({ key: { id: revoked, name: 'x' }, updateMask: ['name'] }, metadata),
        'FAILED_PRECONDITION/KEY_REVOKED',
      ],
      ['rotate archived', k.rotateKey({ id: archived }, metadata), 'FAILED_PRECONDITION/KEY_ARCHIVED'],
      ['rotate revoked', k.rotateKey({ id: revoked }, metadata), 'FAILED_PRECONDITION/KEY_REVOKED'],
      ['rotate expired', k.rotateKey({ id: expired }, metadata), 'FAILED_PRECONDITION/KEY_NOT_ACTIVE'],
      ['rotate rotated-away', k.rotateKey({ id: rotatedAway }, metadata), 'FAILED_PRECONDITION/KEY_ROTATED'],
      ['get deleted', k.getKey({ id: deleted }, metadata), 'NOT_FOUND/KEY_NOT_FOUND'],
      ['delete deleted', k.deleteKey({ id: deleted }, metadata), 'NOT_FOUND/KEY_NOT_FOUND'],
      ['reactivate deleted', k.reactivateKey({ id: deleted }, metadata), 'NOT_FOUND/KEY_NOT_FOUND'],
    ];
    const got = await Promise.all(cases.map(async ([label, p]) => [label, (await outcome(p)).text]));
    expect(got).toEqual(cases.map(([label, , want]) => [label, want]));
  });

  it('legal transitions: revoke an archived key, delete a revoked one, archive an expired one', async () => {
    const { metadata, create } = await newOrg();
    const a = (await create()).key!.id;
    await s.clients.keys.archiveKey({ id: a }, metadata);
    expect((await s.clients.keys.revokeKey({ id: a }, metadata)).key!.state).toBe(KeyState.KEY_STATE_REVOKED);
    await s.clients.keys.deleteKey({ id: a }, metadata);
    expect(await s.collections.keys.countDocuments({ _id: a })).toBe(0);
    const e = (await create()).key!.id;
    await s.collections.keys.updateOne({ _id: e }, { $set: { expires_at: new Date(Date.now() - 1000) } });
    expect((await s.clients.keys.archiveKey({ id: e }, metadata)).key!.state).toBe(KeyState.KEY_STATE_ARCHIVED);
  });
});

describe('the plan limit across the lifecycle', () => {
  it('archive and delete free a slot; reactivation needs one (PLAN_LIMIT_REACHED)', async () => {
    const { orgId, metadata, create } = await newOrg();
    await s.app.storage.collections.organizations.insertOne({ _id: orgId, key_limit: 2, created_at: new Date() });
    const a = (await create()).key!.id;
    const b = (await create()).key!.id;
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
    await s.clients.keys.archiveKey({ id: a }, metadata);
    const c = (await create()).key!.id; // the archived key's slot
    expect(await failure(s.clients.keys.reactivateKey({ id: a }, metadata))).toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      reason: 'PLAN_LIMIT_REACHED',
    });
    expect((await s.clients.keys.getKey({ id: a }, metadata)).key!.state).toBe(KeyState.KEY_STATE_ARCHIVED);
    await s.clients.keys.deleteKey({ id: c }, metadata);
    await s.clients.keys.reactivateKey({ id: a }, metadata);
    // Rotation hands the slot to the successor: still at the cap, and rotation itself is allowed.
    await s.clients.keys.rotateKey({ id: b, overlap: { seconds: 60, nanos: 0 } }, metadata);
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
  });

  it('a lowered cap still counts the keys that hold places under the higher one', async () => {
    const { orgId, metadata, create } = await newOrg();
    const orgs = s.app.storage.collections.organizations;
    await orgs.insertOne({ _id: orgId, key_limit: 6, created_at: new Date() });
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await create()).key!.id);
    await orgs.updateOne({ _id: orgId }, { $set: { key_limit: 3 } });
    // Three keys live against a cap of 3, wherever their places are: full.
    for (const id of ids.slice(0, 3)) await s.clients.keys.revokeKey({ id }, metadata);
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
    await s.clients.keys.archiveKey({ id: ids[3] }, metadata);
    await create();
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
    expect(await failure(s.clients.keys.reactivateKey({ id: ids[3] }, metadata))).toMatchObject({ reason: 'PLAN_LIMIT_REACHED' });
    // Back to the higher cap: its places are free again.
    await orgs.updateOne({ _id: orgId }, { $set: { key_limit: 6 } });
    await s.clients.keys.reactivateKey({ id: ids[3] }, metadata);
    await create();
    await create();
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
  });

  it('at the cap, a place held past its grace by a key that never came to be is taken back', async () => {
    const { orgId, create } = await newOrg();
    await s.app.storage.collections.organizations.insertOne({ _id: orgId, key_limit: 2, created_at: new Date() });
    const held = (await create()).key!.id;
    const { n: heldAt } = (await s.collections.slots.findOne({ org_id: orgId, key_id: held }))!;
    // What a crash between taking a place and inserting the key leaves, a minute ago and now.
    const orphan = (n: number, ageMs: number) => ({
      _id: `${orgId}:${n}`,
      org_id: orgId,
      key_id: newId('key'),
      n,
      created_at: new Date(Date.now() - ageMs),
    });
    await s.collections.slots.insertOne(orphan(1 - heldAt, 10_000));
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
    await s.collections.slots.replaceOne({ _id: `${orgId}:${1 - heldAt}` }, orphan(1 - heldAt, 120_000));
    const taken = (await create()).key!.id;
    expect((await s.collections.slots.find({ org_id: orgId }).toArray()).map((d) => d.key_id).sort()).toEqual([held, taken].sort());
    expect((await failure(create())).reason).toBe('PLAN_LIMIT_REACHED');
  });

  it('a create far below the cap reads no slot, however many the organization holds', async () => {
    const { orgId, create } = await newOrg();
    await s.app.storage.collections.organizations.insertOne({ _id: orgId, key_limit: 100_000, created_at: new Date() });
    const slots = Array.from({ length: 500 }, (_, n) => ({
      _id: `${orgId}:${n}`,
      org_id: orgId,
      key_id: newId('key'),
      n,
      created_at: new Date(),
    }));
    await s.collections.slots.insertMany(slots);
    const sent: string[] = [];
    const watch = (e: CommandStartedEvent) => {
      if (e.command[e.commandName] === 'key_slots') sent.push(e.commandName);
    };
    s.app.storage.client.on('commandStarted', watch);
    try {
      await create();
    } finally {
      s.app.storage.client.off('commandStarted', watch);
    }
    // One insert of a random place below 100 000: taken with a chance of 1 in 200.
    expect(sent.filter((c) => c !== 'insert')).toEqual([]);
    expect(sent.length).toBeGreaterThanOrEqual(1);
  });
});

describe('UpdateKey (AIP-134)', () => {
  it('changes masked fields only, bumps update_time and etag', async () => {
    const { metadata, create } = await newOrg();
    const before = (await create({ name: 'old', metadata: { a: '1' } })).key!;
    await sleep(5);
    const after = (
      await s.clients.keys.updateKey({ key: { id: before.id, name: 'new', metadata: { b: '2' } }, updateMask: ['name'] }, metadata)
    ).key!;
    expect(after.name).toBe('new');
    expect(after.metadata).toEqual({ a: '1' });
    expect(after.etag).not.toBe(before.etag);
    expect(after.updateTime!.getTime()).toBeGreaterThan(before.updateTime!.getTime());
    const cleared = (
      await s.clients.keys.updateKey(
        { key: { id: before.id, scopes: ['read', 'write'], metadata: {} }, updateMask: ['scopes', 'metadata', 'expire_time'] },
        metadata,
      )
    ).key!;
    expect(cleared.scopes).toEqual(['read', 'write']);
    expect(cleared.metadata).toEqual({});
    expect(cleared.expireTime).toBeUndefined();
  });

  it('rejects output-only, immutable and unknown paths and an empty mask with a field violation', async () => {
    const { metadata, create } = await newOrg();
    const id = (await create()).key!.id;
    for (const mask of [['state'], ['org_id'], ['environment'], ['hash'], []]) {
      expect(await failure(s.clients.keys.updateKey({ key: { id, name: 'x' }, updateMask: mask }, metadata))).toMatchObject({
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_UPDATE_MASK',
        fields: ['update_mask:INVALID_UPDATE_MASK'],
      });
    }
  });

  it('answers ABORTED for a stale etag', async () => {
    const { metadata, create } = await newOrg();
    const k = (await create()).key!;
    await s.clients.keys.updateKey({ key: { id: k.id, name: 'one', etag: k.etag }, updateMask: ['name'] }, metadata);
    expect(
      await failure(s.clients.keys.updateKey({ key: { id: k.id, name: 'two', etag: k.etag }, updateMask: ['name'] }, metadata)),
    ).toMatchObject({ code: status.ABORTED, reason: 'ETAG_MISMATCH' });
  });

  it('lets exactly one of two concurrent updates with the same etag win; the other gets ABORTED', async () => {
    const { metadata, create } = await newOrg();
    for (let round = 0; round < 5; round++) {
      const k = (await create()).key!;
      const results = await Promise.all(
        ['left', 'right'].map((name) =>
          outcome(s.clients.keys.updateKey({ key: { id: k.id, name, etag: k.etag }, updateMask: ['name'] }, metadata)),
        ),
      );
      expect(results.map((r) => r.text).sort()).toEqual(['ABORTED/ETAG_MISMATCH', 'OK']);
      const winner = results.find((r) => r.text === 'OK')!.value!.key!.name;
      expect((await s.clients.keys.getKey({ id: k.id }, metadata)).key!.name).toBe(winner);
    }
  });
});

describe('version claims', () => {
  it('a claim left by a crashed change blocks only for its grace period', async () => {
    const { metadata, create } = await newOrg();
    const k = (await create()).key!;
    const update = () => outcome(s.clients.keys.updateKey({ key: { id: k.id, name: 'renamed' }, updateMask: ['name'] }, metadata));
    // A change to this version is under way (claimed just now): others wait their turn.
    await s.collections.mutations.insertOne({ _id: `${k.id}:${k.etag}`, key_id: k.id, at: new Date() });
    expect((await update()).text).toBe('ABORTED/ETAG_MISMATCH');
    // The same claim 60 s old, its change never written: it is taken over.
    await s.collections.mutations.updateOne({ _id: `${k.id}:${k.etag}` }, { $set: { at: new Date(Date.now() - 60_000) } });
    expect((await update()).text).toBe('OK');
    expect((await s.clients.keys.getKey({ id: k.id }, metadata)).key!.name).toBe('renamed');
  });
});

describe('RotateKey', () => {
  it('the old secret verifies during the overlap and fails after it; the new one verifies throughout', async () => {
    const { metadata, create } = await newOrg();
    const old = await create({ name: 'svc', scopes: ['read'], metadata: { team: 'x' } });
    const r = await s.clients.keys.rotateKey({ id: old.key!.id, overlap: { seconds: 1, nanos: 500_000_000 } }, metadata);
    expect(r.key).toMatchObject({ name: 'svc', scopes: ['read'], metadata: { team: 'x' }, environment: 'live', rotatedFrom: old.key!.id });
    expect(r.previousKey!.replacedBy).toBe(r.key!.id);
    expect(r.secret).not.toBe(old.secret);
    expect(await verifyCode(old.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
    expect(await verifyCode(r.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
    await sleep(1700);
    expect(await verifyCode(old.secret)).toBe(VerifyCode.VERIFY_CODE_EXPIRED);
    expect(await verifyCode(r.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
  });

  it('overlap 0 revokes the old key at once', async () => {
    const { metadata, create } = await newOrg();
    const old = await create();
    expect(await verifyCode(old.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
    const r = await s.clients.keys.rotateKey({ id: old.key!.id, overlap: { seconds: 0, nanos: 0 } }, metadata);
    expect(r.previousKey!.state).toBe(KeyState.KEY_STATE_REVOKED);
    expect(await verifyCode(old.secret)).toBe(VerifyCode.VERIFY_CODE_REVOKED);
    expect(await verifyCode(r.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
  });

  it('rejects an overlap beyond the configured maximum', async () => {
    const { metadata, create } = await newOrg();
    const old = await create();
    expect(await failure(s.clients.keys.rotateKey({ id: old.key!.id, overlap: { seconds: 8 * 86400, nanos: 0 } }, metadata))).toMatchObject(
      { code: status.INVALID_ARGUMENT, reason: 'INVALID_OVERLAP', fields: ['overlap:INVALID_OVERLAP'] },
    );
  });
});

describe('recoverable secrets', () => {
  it('GetKeySecret returns the original secret; MongoDB holds no plaintext; each read is audited', async () => {
    const { orgId, metadata, create } = await newOrg();
    const { key, secret } = await create({ recoverable: true });
    expect(key!.recoverable).toBe(true);
    expect((await s.clients.keys.getKeySecret({ id: key!.id }, metadata)).secret).toBe(secret);
    const stored = await s.collections.keys.findOne({ _id: key!.id });
    expect(stored!.secret_box).toMatchObject({ kid: expect.any(String), ciphertext: expect.any(String) });
    const everything = JSON.stringify(await s.db.db.collection('api_keys').find({ org_id: orgId }).toArray());
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(secret.slice(12, 40));
    expect(await s.collections.audit.countDocuments({ org_id: orgId, action: 'key.secret.read', key_id: key!.id })).toBe(1);
  });

  it('a non-recoverable key’s secret cannot be read by any RPC', async () => {
    const { metadata, create } = await newOrg();
    const { key } = await create();
    expect(await failure(s.clients.keys.getKeySecret({ id: key!.id }, metadata))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: 'KEY_NOT_RECOVERABLE',
    });
  });

  it('members cannot read secrets; without SECRET_ENCRYPTION_KEY recoverable creates are refused', async () => {
    const { orgId, create } = await newOrg();
    const { key } = await create({ recoverable: true });
    const member = bearer(await s.userToken({ orgId, role: 'member' }));
    expect((await failure(s.clients.keys.getKeySecret({ id: key!.id }, member))).code).toBe(status.PERMISSION_DENIED);
    const plain = await startTestServer('norecover');
    try {
      const { metadata } = await plain.admin();
      expect(await failure(plain.clients.keys.createKey({ name: 'r', scopes: ['read'], recoverable: true }, metadata))).toMatchObject({
        code: status.FAILED_PRECONDITION,
        reason: 'RECOVERY_DISABLED',
      });
    } finally {
      await plain.stop();
    }
  });
});

describe('audit log', () => {
  it('each mutating RPC, run once, adds exactly one event with the right actor and outcome', async () => {
    const { orgId, metadata, create } = await newOrg();
    const count = () => s.collections.audit.countDocuments({ org_id: orgId });
    const created = await create({ recoverable: true });
    const id = created.key!.id;
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['key.update', () => s.clients.keys.updateKey({ key: { id, name: 'n2' }, updateMask: ['name'] }, metadata)],
      ['key.archive', () => s.clients.keys.archiveKey({ id }, metadata)],
      ['key.reactivate', () => s.clients.keys.reactivateKey({ id }, metadata)],
      ['key.secret.read', () => s.clients.keys.getKeySecret({ id }, metadata)],
      ['key.rotate', () => s.clients.keys.rotateKey({ id, overlap: { seconds: 5, nanos: 0 } }, metadata)],
      ['key.revoke', () => s.clients.keys.revokeKey({ id }, metadata)],
      ['key.delete', () => s.clients.keys.deleteKey({ id }, metadata)],
    ];
    expect(await count()).toBe(1);
    expect(await s.collections.audit.countDocuments({ org_id: orgId, action: 'key.create', key_id: id })).toBe(1);
    for (const [action, run] of steps) {
      const before = await count();
      await run();
      expect([action, (await count()) - before]).toEqual([action, 1]);
    }
    // Reads by the organization's own users are not audited; a failed mutation is, with its reason.
    await s.clients.keys.listKeys({}, metadata);
    await failure(s.clients.keys.archiveKey({ id }, metadata));
    const events = (await s.clients.keys.listAuditEvents({ keyId: id, pageSize: 100 }, metadata)).events;
    expect(events.map((e) => `${e.action}:${e.outcome}`)).toEqual([
      'key.archive:KEY_NOT_FOUND',
      'key.delete:OK',
      'key.revoke:OK',
      'key.rotate:OK',
      'key.secret.read:OK',
      'key.reactivate:OK',
      'key.archive:OK',
      'key.update:OK',
      'key.create:OK',
    ]);
    const actor = (await s.collections.keys.findOne({ rotated_from: id }))!.created_by;
    expect(new Set(events.map((e) => e.actor))).toEqual(new Set([actor]));
    expect(events.every((e) => e.requestId !== '' && e.method.startsWith('/apikeys.v1.KeyService/'))).toBe(true);
  });

  it('an acting-as call records the staff actor, not the organization', async () => {
    const { orgId, create } = await newOrg();
    const { key } = await create();
    const staffId = newId('usr');
    const staff = bearer(
      await s.userToken({ sub: staffId, orgId: newId('org'), role: 'admin', email: 'ops@staff.example', emailVerified: true }),
      { 'x-organization-id': orgId },
    );
    await s.clients.keys.getKey({ id: key!.id }, staff);
    await s.clients.keys.revokeKey({ id: key!.id, comment: 'support ticket 42' }, staff);
    const events = await s.collections.audit.find({ org_id: orgId, actor: staffId }).sort({ time: 1 }).toArray();
    expect(events.map((e) => [e.action, e.acting_as])).toEqual([
      ['key.get', 'ops@staff.example'],
      ['key.revoke', 'ops@staff.example'],
    ]);
  });

  it('pages and filters by action and time', async () => {
    const { metadata, create } = await newOrg();
    const start = new Date();
    for (let i = 0; i < 5; i++) await create();
    const all: string[] = [];
    let token = '';
    do {
      const page = await s.clients.keys.listAuditEvents(
        { action: 'key.create', pageSize: 2, pageToken: token, startTime: start },
        metadata,
      );
      all.push(...page.events.map((e) => e.id));
      token = page.nextPageToken;
    } while (token);
    expect(all).toHaveLength(5);
    expect(new Set(all).size).toBe(5);
    expect((await s.clients.keys.listAuditEvents({ action: 'key.delete' }, metadata)).events).toHaveLength(0);
    expect((await failure(s.clients.keys.listAuditEvents({ keyId: 'nope' }, metadata))).reason).toBe('INVALID_ID');
  });
});

describe('idempotent CreateKey (AIP-155)', () => {
  it('20 concurrent creates with one request_id create one key and all get its secret', async () => {
    const { orgId, metadata } = await newOrg();
    const requestId = `req-${randomBytes(6).toString('hex')}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => s.clients.keys.createKey({ name: 'once', scopes: ['read'], requestId }, metadata)),
    );
    expect(new Set(results.map((r) => r.key!.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.secret)).size).toBe(1);
    expect(results[0].secret).toMatch(/^sk_live_/);
    expect(await s.collections.keys.countDocuments({ org_id: orgId })).toBe(1);
    expect(await s.collections.slots.countDocuments({ org_id: orgId })).toBe(1);
    // Another organization's identical request id is its own.
    const other = await newOrg();
    const theirs = await s.clients.keys.createKey({ name: 'once', scopes: ['read'], requestId }, other.metadata);
    expect(theirs.key!.id).not.toBe(results[0].key!.id);
  });
});

describe('stale-key review', () => {
  it('lists keys unused since a time, never-used keys included', async () => {
    const { metadata, create } = await newOrg();
    const used = await create({ name: 'used' });
    const never = await create({ name: 'never' });
    const old = await create({ name: 'old' });
    await s.collections.lastUsed.insertOne({ _id: used.key!.id, last_used_at: new Date() });
    await s.collections.lastUsed.insertOne({ _id: old.key!.id, last_used_at: new Date(Date.now() - 90 * 86400_000) });
    const stale = await s.clients.keys.listKeys({ unusedSince: new Date(Date.now() - 30 * 86400_000) }, metadata);
    expect(stale.keys.map((k: Key) => k.name).sort()).toEqual(['never', 'old']);
    expect(never.key!.lastUsedTime).toBeUndefined();
  });
});
