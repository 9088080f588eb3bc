// The promises, tried the way an attacker would: a key that asks for more than it holds, a
// replayed request id, a rotated-away key trying to live on. Each case failed before the
// dominance rule, retiring keys and bound request ids existed.
import { status, type Metadata } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { bearer } from '../../src/client/promiseClient';
import { KeyState } from '../../src/gen/apikeys/v1/key';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';

let s: TestServer;
let service: Metadata;
beforeAll(async () => {
  s = await startTestServer('trust', { SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ORG_KEY_LIMIT: '3' });
  service = bearer(s.verifyToken);
});
afterAll(() => s.stop());

type CreateExtra = Record<string, unknown>;
async function newOrg() {
  const { orgId, metadata } = await s.admin();
  const create = async (extra: CreateExtra = {}, md: Metadata = metadata) =>
    s.clients.keys.createKey({ name: 'k', scopes: ['read'], ...extra }, md);
  /** An API key of this org used as a caller. */
  const caller = async (extra: CreateExtra) => bearer((await create(extra)).secret);
  return { orgId, metadata, create, caller };
}
const verifyCode = async (secret: string) => (await s.clients.verify.verifyKey({ key: secret }, service)).code;

describe('a key acts only on keys it dominates', () => {
  it('a write key cannot read the secret of a recoverable key holding a scope it lacks', async () => {
    const org = await newOrg();
    const victim = await org.create({ scopes: ['read', 'billing'], recoverable: true });
    const writer = await org.caller({ scopes: ['read', 'write'] });
    const f = await failure(s.clients.keys.getKeySecret({ id: victim.key!.id }, writer));
    expect(f).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'SCOPE_ESCALATION' });
    // It may read back the secret of a key it does dominate.
    const mine = await org.create({ scopes: ['read'], recoverable: true });
    expect((await s.clients.keys.getKeySecret({ id: mine.key!.id }, writer)).secret).toBe(mine.secret);
  });

  it('a write key cannot reactivate an archived key holding scopes it lacks', async () => {
    const org = await newOrg();
    const victim = await org.create({ scopes: ['read', 'billing'] });
    await s.clients.keys.archiveKey({ id: victim.key!.id }, org.metadata);
    const writer = await org.caller({ scopes: ['read', 'write'] });
    const f = await failure(s.clients.keys.reactivateKey({ id: victim.key!.id }, writer));
    expect(f).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'SCOPE_ESCALATION' });
    expect((await s.clients.keys.getKey({ id: victim.key!.id }, org.metadata)).key!.state).toBe(KeyState.KEY_STATE_ARCHIVED);
  });

  it('a test key cannot mint a live key, and mints test keys by default', async () => {
    const org = await newOrg();
    const tester = await org.caller({ scopes: ['read', 'write'], environment: 'test' });
    const f = await failure(org.create({ environment: 'live' }, tester));
    expect(f).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'ENVIRONMENT_ESCALATION' });
    const minted = await org.create({}, tester);
    expect(minted.key!.environment).toBe('test');
    expect(minted.secret).toMatch(/^sk_test_/);
  });

  it('a rate-limited key cannot mint an unlimited or laxer key', async () => {
    const org = await newOrg();
    const limited = await org.caller({ scopes: ['read', 'write'], rateLimit: { limit: 10, windowSeconds: 60 } });
    for (const rateLimit of [undefined, { limit: 11, windowSeconds: 60 }, { limit: 10, windowSeconds: 30 }]) {
      const f = await failure(org.create({ rateLimit }, limited));
      expect(f).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'RATE_LIMIT_ESCALATION' });
    }
    expect((await org.create({ rateLimit: { limit: 5, windowSeconds: 60 } }, limited)).key!.rateLimit).toEqual({
      limit: 5,
      windowSeconds: 60,
    });
  });

  it('an expiring key cannot mint a key that outlives it, nor extend one', async () => {
    const org = await newOrg();
    const end = new Date(Date.now() + 3_600_000);
    const expiring = await org.caller({ scopes: ['read', 'write'], expireTime: end });
    expect(await failure(org.create({}, expiring))).toMatchObject({ reason: 'EXPIRY_ESCALATION' });
    expect(await failure(org.create({ expireTime: new Date(end.getTime() + 1000) }, expiring))).toMatchObject({
      reason: 'EXPIRY_ESCALATION',
    });
    const child = (await org.create({ expireTime: new Date(end.getTime() - 1000) }, expiring)).key!;
    const widen = await failure(
      s.clients.keys.updateKey({ key: { ...child, expireTime: undefined }, updateMask: ['expire_time'] }, expiring),
    );
    expect(widen).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'EXPIRY_ESCALATION' });
  });

  it('a workspace-bound key acts only in its workspace', async () => {
    const org = await newOrg();
    const bound = await org.caller({ scopes: ['read', 'write'], workspaceId: 'ws_a' });
    expect(await failure(org.create({ workspaceId: 'ws_b' }, bound))).toMatchObject({ reason: 'WORKSPACE_ESCALATION' });
    expect(await failure(org.create({}, bound))).toMatchObject({ reason: 'WORKSPACE_ESCALATION' });
    const other = await org.create({ workspaceId: 'ws_b' });
    expect(await failure(s.clients.keys.revokeKey({ id: other.key!.id }, bound))).toMatchObject({ reason: 'WORKSPACE_ESCALATION' });
    expect(await verifyCode(other.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
  });

  it('a key cannot revoke, archive, delete or rotate a stronger key, but may revoke itself when allowed', async () => {
    const org = await newOrg();
    const strong = await org.create({ scopes: ['read', 'write', 'billing'] });
    const weakSecret = (await org.create({ scopes: ['read', 'write'], allowSelfRevoke: true })).secret;
    const weak = bearer(weakSecret);
    const id = strong.key!.id;
    for (const call of [
      s.clients.keys.revokeKey({ id }, weak),
      s.clients.keys.archiveKey({ id }, weak),
      s.clients.keys.deleteKey({ id }, weak),
      s.clients.keys.rotateKey({ id }, weak),
    ]) {
      expect(await failure(call)).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'SCOPE_ESCALATION' });
    }
    expect(await verifyCode(strong.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
    const selfId = (await s.clients.keys.listKeys({}, org.metadata)).keys.find(
      (k) => k.scopes.includes('write') && !k.scopes.includes('billing'),
    )!.id;
    expect((await s.clients.keys.revokeKey({ id: selfId }, weak)).key!.state).toBe(KeyState.KEY_STATE_REVOKED);
  });
});

describe('a rotated-away key only retires', () => {
  it('its expiry can be brought forward, never cleared or extended, by itself or by an admin', async () => {
    const org = await newOrg();
    const old = await org.create({ scopes: ['read', 'write'] });
    const rotated = await s.clients.keys.rotateKey({ id: old.key!.id, overlap: { seconds: 3600, nanos: 0 } }, org.metadata);
    const retiring = rotated.previousKey!;
    const end = retiring.expireTime!;
    // The key itself is refused by the dominance rule (it cannot outlive itself), an admin by retirement.
    for (const [md, code, reason] of [
      [bearer(old.secret), status.PERMISSION_DENIED, 'EXPIRY_ESCALATION'],
      [org.metadata, status.FAILED_PRECONDITION, 'KEY_RETIRING'],
    ] as const) {
      const cleared = await failure(
        s.clients.keys.updateKey({ key: { ...retiring, expireTime: undefined }, updateMask: ['expire_time'] }, md),
      );
      expect(cleared).toMatchObject({ code, reason });
      const later = await failure(
        s.clients.keys.updateKey({ key: { ...retiring, expireTime: new Date(end.getTime() + 60_000) }, updateMask: ['expire_time'] }, md),
      );
      expect(later).toMatchObject({ code, reason });
    }
    const wider = await failure(
      s.clients.keys.updateKey({ key: { ...retiring, scopes: ['read', 'write', 'billing'] }, updateMask: ['scopes'] }, org.metadata),
    );
    expect(wider).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'KEY_RETIRING' });
    const sooner = new Date(end.getTime() - 60_000);
    const narrowed = await s.clients.keys.updateKey(
      { key: { ...retiring, expireTime: sooner }, updateMask: ['expire_time'] },
      org.metadata,
    );
    expect(narrowed.key!.expireTime!.getTime()).toBe(sooner.getTime());
    expect((await s.clients.keys.getKey({ id: retiring.id }, org.metadata)).key!.expireTime!.getTime()).toBe(sooner.getTime());
  });

  it('cannot be reactivated or rotated again, so the organization never exceeds its cap', async () => {
    const org = await newOrg(); // cap 3
    const a = await org.create();
    const r = await s.clients.keys.rotateKey({ id: a.key!.id, overlap: { seconds: 3600, nanos: 0 } }, org.metadata);
    await org.create();
    await org.create(); // successor + 2 = the cap of 3
    await s.clients.keys.archiveKey({ id: a.key!.id }, org.metadata);
    expect(await failure(s.clients.keys.reactivateKey({ id: a.key!.id }, org.metadata))).toMatchObject({ reason: 'KEY_RETIRING' });
    expect(await failure(s.clients.keys.rotateKey({ id: a.key!.id }, org.metadata))).toMatchObject({ reason: 'KEY_ROTATED' });
    expect(await failure(org.create())).toMatchObject({ reason: 'PLAN_LIMIT_REACHED' });
    expect(r.key!.state).toBe(KeyState.KEY_STATE_ACTIVE);
    expect(await s.collections.slots.countDocuments({ org_id: org.orgId })).toBe(3);
  });
});

describe('a request_id is bound to its caller and parameters', () => {
  it('another principal replaying an admin request id is refused, never handed the admin key or its secret', async () => {
    const org = await newOrg();
    const requestId = `req-${randomBytes(6).toString('hex')}`;
    const first = await org.create({ scopes: ['read', 'write', 'billing'], requestId });
    const writer = await org.caller({ scopes: ['read', 'write'] });
    const f = await failure(org.create({ scopes: ['read'], requestId }, writer));
    expect(f).toMatchObject({ code: status.ALREADY_EXISTS, reason: 'REQUEST_ID_REUSED' });
    const otherAdmin = (await s.admin(org.orgId)).metadata;
    expect(await failure(org.create({ scopes: ['read', 'write', 'billing'], requestId }, otherAdmin))).toMatchObject({
      reason: 'REQUEST_ID_REUSED',
    });
    // The same caller with other parameters is refused too; with the same ones, it gets the same key and secret.
    expect(await failure(org.create({ scopes: ['read'], requestId }))).toMatchObject({ reason: 'REQUEST_ID_REUSED' });
    const replay = await org.create({ scopes: ['billing', 'write', 'read'], requestId });
    expect(replay.key!.id).toBe(first.key!.id);
    expect(replay.secret).toBe(first.secret);
  });

  it('the sealed copy kept for replays is removed when the key is revoked or deleted', async () => {
    const org = await newOrg();
    for (const end of ['revoke', 'delete'] as const) {
      const requestId = `req-${randomBytes(6).toString('hex')}`;
      const first = await org.create({ requestId }); // not recoverable: the copy exists for replays only
      const stored = await s.collections.createRequests.findOne({ _id: `${org.orgId}:${requestId}` });
      expect(stored?.secret_box).not.toBeNull();
      if (end === 'revoke') await s.clients.keys.revokeKey({ id: first.key!.id }, org.metadata);
      else await s.clients.keys.deleteKey({ id: first.key!.id }, org.metadata);
      expect((await s.collections.createRequests.findOne({ _id: `${org.orgId}:${requestId}` }))?.secret_box ?? null).toBeNull();
      const replay = org.create({ requestId });
      if (end === 'revoke') expect((await replay).secret).toBe('');
      else expect(await failure(replay)).toMatchObject({ reason: 'KEY_NOT_FOUND' });
    }
  });

  it('records when the window ends, so nothing is kept longer', async () => {
    const org = await newOrg();
    const requestId = `req-${randomBytes(6).toString('hex')}`;
    const before = Date.now();
    await org.create({ requestId });
    const stored = (await s.collections.createRequests.findOne({ _id: `${org.orgId}:${requestId}` }))!;
    const windowMs = s.config.idempotencyWindowSeconds * 1000;
    expect(stored.expires_at.getTime()).toBeGreaterThanOrEqual(before + windowMs);
    expect(stored.expires_at.getTime()).toBeLessThanOrEqual(Date.now() + windowMs);
  });
});

describe('unused_since', () => {
  it('pages through a large organization in bounded reads, never one query over every id', async () => {
    const md = (await s.admin()).metadata;
    // A bigger org than the cap allows through the API: write documents directly, in small batches.
    const base = (await s.clients.keys.createKey({ name: 'template', scopes: ['read'] }, md)).key!;
    const template = (await s.collections.keys.findOne({ _id: base.id }))!;
    const docs = Array.from({ length: 45 }, (_, i) => ({
      ...template,
      _id: `key_${String(i).padStart(26, '0')}`,
      hash: randomBytes(32).toString('hex'),
      created_at: new Date(template.created_at.getTime() - (i + 1) * 1000),
    }));
    for (let i = 0; i < docs.length; i += 15) await s.collections.keys.insertMany(docs.slice(i, i + 15));
    const used = new Date();
    await s.collections.lastUsed.insertMany(docs.filter((_, i) => i % 3 !== 0).map((d) => ({ _id: d._id, last_used_at: used })));
    const commands: Array<Record<string, unknown>> = [];
    const listen = (e: { commandName: string; command: Record<string, unknown> }) => commands.push(e.command);
    s.app.storage.client.on('commandStarted', listen);
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await s.clients.keys.listKeys({ pageSize: 4, pageToken, unusedSince: new Date(used.getTime() - 60_000) }, md);
      seen.push(...page.keys.map((k) => k.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    s.app.storage.client.off('commandStarted', listen);
    const expected = [base.id, ...docs.filter((_, i) => i % 3 === 0).map((d) => d._id)];
    expect(seen.sort()).toEqual(expected.sort());
    // No query lists every id of the organization: each $in is at most one page read.
    const inSizes = commands.flatMap((c) => {
      const ids = (c.filter as { _id?: { $in?: unknown[]; $nin?: unknown[] } } | undefined)?._id;
      return [ids?.$in?.length ?? 0, ids?.$nin?.length ?? 0];
    });
    expect(Math.max(...inSizes)).toBeLessThanOrEqual(4);
  });
});
