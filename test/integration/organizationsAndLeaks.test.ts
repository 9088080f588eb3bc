// GetOrganization, SetOrganizationKeyLimit, LookupKey and ReportLeakedKeys against the real server
// and database: what each answers, what it changes (and does not), and what it leaves in the
// audit trail. Who may call them is the matrix of callers.test.ts.
import { status, type Metadata } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { KeyState } from '../../src/gen/apikeys/v1/key';
import { LeakOutcome } from '../../src/gen/apikeys/v1/key_service';
import { KeyChangeKind, VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { failure } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';
import { changeOf, watch } from '../support/watch';

const DEFAULT_LIMIT = 10;
const { LEAK_OUTCOME_REVOKED: REVOKED, LEAK_OUTCOME_ALREADY_ENDED: ALREADY_ENDED, LEAK_OUTCOME_UNKNOWN: UNKNOWN } = LeakOutcome;

let s: TestServer;
let service: Metadata;

beforeAll(async () => {
  s = await startTestServer('orgs_and_leaks', { ORG_KEY_LIMIT: String(DEFAULT_LIMIT) });
  service = bearer(s.verifyToken);
});
afterAll(() => s.stop());

/** A staff admin (staff.example is the harness's staff domain), acting as `actingAs` when given. */
async function staff(actingAs?: string, role: 'admin' | 'member' = 'admin') {
  const id = newId('usr');
  const token = await s.userToken({ sub: id, orgId: newId('org'), role, email: `ops-${id.slice(-6)}@staff.example`, emailVerified: true });
  return { id, metadata: bearer(token, actingAs ? { 'x-organization-id': actingAs } : {}) };
}

async function createKey(admin: Metadata, name = 'k') {
  const { key, secret } = await s.clients.keys.createKey({ name, scopes: ['read'] }, admin);
  return { id: key!.id, secret };
}

const verify = async (secret: string) => (await s.clients.verify.verifyKey({ key: secret }, service)).code;
const stored = async (id: string) => (await s.collections.keys.findOne({ _id: id }))!;
/** Rows compared without their order: audit events of one millisecond have none. */
const unordered = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).sort();
const auditOf = (orgId: string, action: string) => s.collections.audit.find({ org_id: orgId, action }).sort({ time: 1, _id: 1 }).toArray();

describe('GetOrganization', () => {
  it('shows the default limit, the places its live keys hold and those left; archived and revoked keys hold none', async () => {
    const { orgId, metadata } = await s.admin();
    const keys = await Promise.all([1, 2, 3, 4].map(() => createKey(metadata)));
    await s.clients.keys.archiveKey({ id: keys[2].id }, metadata);
    await s.clients.keys.revokeKey({ id: keys[3].id }, metadata);
    const { organization } = await s.clients.keys.getOrganization({}, metadata);
    expect(organization).toEqual({ id: orgId, keyLimit: DEFAULT_LIMIT, keyLimitSet: false, activeKeys: 2, freePlaces: DEFAULT_LIMIT - 2 });
  });

  it('answers staff for the organization they act as, and an audit event records that read', async () => {
    const { orgId, metadata } = await s.admin();
    await createKey(metadata);
    const ops = await staff(orgId, 'member');
    expect((await s.clients.keys.getOrganization({}, ops.metadata)).organization).toMatchObject({ id: orgId, activeKeys: 1 });
    expect(await auditOf(orgId, 'organization.get')).toMatchObject([
      { actor: ops.id, acting_as: expect.stringMatching(/@staff\.example$/) },
    ]);
  });
});

describe('SetOrganizationKeyLimit', () => {
  it('lowered below the count: new keys and reactivations are refused, existing keys keep working; raised: both work again', async () => {
    const { orgId, metadata } = await s.admin();
    const ops = await staff(orgId);
    const set = async (keyLimit: number) => (await s.clients.keys.setOrganizationKeyLimit({ keyLimit }, ops.metadata)).organization;

    expect(await set(3)).toEqual({ id: orgId, keyLimit: 3, keyLimitSet: true, activeKeys: 0, freePlaces: 3 });
    const keys = await Promise.all([1, 2, 3].map((i) => createKey(metadata, `k${i}`)));
    expect(await failure(s.clients.keys.createKey({ name: 'fourth', scopes: ['read'] }, metadata))).toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      reason: 'PLAN_LIMIT_REACHED',
    });

    expect(await set(1)).toEqual({ id: orgId, keyLimit: 1, keyLimitSet: true, activeKeys: 3, freePlaces: 0 });
    expect(await failure(s.clients.keys.createKey({ name: 'over', scopes: ['read'] }, metadata))).toMatchObject({
      reason: 'PLAN_LIMIT_REACHED',
    });
    for (const k of keys) expect(await verify(k.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
    await s.clients.keys.archiveKey({ id: keys[0].id }, metadata);
    // Two live keys still hold more than the one place: the archived one cannot come back.
    expect(await failure(s.clients.keys.reactivateKey({ id: keys[0].id }, metadata))).toMatchObject({ reason: 'PLAN_LIMIT_REACHED' });
    expect((await stored(keys[0].id)).status).toBe('archived');

    expect(await set(4)).toMatchObject({ activeKeys: 2, freePlaces: 2 });
    expect((await s.clients.keys.reactivateKey({ id: keys[0].id }, metadata)).key!.state).toBe(KeyState.KEY_STATE_ACTIVE);
    await createKey(metadata, 'fits again');
    expect((await s.clients.keys.getOrganization({}, metadata)).organization).toMatchObject({ keyLimit: 4, activeKeys: 4, freePlaces: 0 });
  });

  it('is audited in the organization with the old and new limit, the real actor and acting_as', async () => {
    const { orgId } = await s.admin();
    const ops = await staff(orgId);
    await s.clients.keys.setOrganizationKeyLimit({ keyLimit: 7 }, ops.metadata);
    await s.clients.keys.setOrganizationKeyLimit({ keyLimit: 5 }, ops.metadata);
    // By the new limit: two events within one millisecond have no order.
    const events = await auditOf(orgId, 'organization.key_limit.set');
    const staffEmail = expect.stringMatching(/@staff\.example$/);
    expect(Object.fromEntries(events.map((e) => [e.details!.key_limit, [e.actor, e.acting_as, e.outcome, e.details]]))).toEqual({
      '7': [ops.id, staffEmail, 'OK', { old_key_limit: String(DEFAULT_LIMIT), old_key_limit_set: 'false', key_limit: '7' }],
      '5': [ops.id, staffEmail, 'OK', { old_key_limit: '7', old_key_limit_set: 'true', key_limit: '5' }],
    });
    // Through the API as well: ListAuditEvents carries the details.
    const listed = await s.clients.keys.listAuditEvents({ action: 'organization.key_limit.set' }, ops.metadata);
    expect(listed.events.map((e) => e.details)).toContainEqual({ old_key_limit: '7', old_key_limit_set: 'true', key_limit: '5' });
  });

  it('staff without x-organization-id set their own organization’s limit', async () => {
    const ops = await staff();
    const { organization } = await s.clients.keys.setOrganizationKeyLimit({ keyLimit: 2 }, ops.metadata);
    expect((await s.collections.organizations.findOne({ _id: organization!.id }))?.key_limit).toBe(2);
  });

  it.each([0, 1_000_001])('refuses %d with a violation of key_limit, and changes nothing', async (keyLimit) => {
    const { orgId } = await s.admin();
    const ops = await staff(orgId);
    expect(await failure(s.clients.keys.setOrganizationKeyLimit({ keyLimit }, ops.metadata))).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_ARGUMENT',
      domain: 'apikeys.v1',
      fields: ['key_limit:INVALID_ARGUMENT'],
    });
    expect(await s.collections.organizations.findOne({ _id: orgId })).toBeNull();
    expect(await auditOf(orgId, 'organization.key_limit.set')).toMatchObject([{ outcome: 'INVALID_ARGUMENT' }]);
  });
});

describe('LookupKey', () => {
  it('names the key of a secret in any organization, with its state, never the secret; audited in that organization', async () => {
    const { orgId, metadata } = await s.admin();
    const k = await createKey(metadata);
    const res = await s.clients.keys.lookupKey({ secret: k.secret }, service);
    expect(res.key).toMatchObject({ id: k.id, orgId, state: KeyState.KEY_STATE_ACTIVE });
    expect(JSON.stringify(res)).not.toContain(k.secret.slice(8));
    await s.clients.keys.revokeKey({ id: k.id }, metadata);
    expect((await s.clients.keys.lookupKey({ secret: k.secret }, service)).key!.state).toBe(KeyState.KEY_STATE_REVOKED);
    expect(await auditOf(orgId, 'key.lookup')).toMatchObject([
      { actor: 'service:1', key_id: k.id, acting_as: null, outcome: 'OK' },
      { actor: 'service:1', key_id: k.id },
    ]);
  });

  it('staff on their own find any organization’s key (audited there as acting-as); acting as another organization, NOT_FOUND', async () => {
    const { orgId, metadata } = await s.admin();
    const k = await createKey(metadata);
    const ops = await staff();
    expect((await s.clients.keys.lookupKey({ secret: k.secret }, ops.metadata)).key!.orgId).toBe(orgId);
    expect(await auditOf(orgId, 'key.lookup')).toMatchObject([{ actor: ops.id, acting_as: expect.stringMatching(/@staff\.example$/) }]);
    const elsewhere = await staff(newId('org'));
    expect(await failure(s.clients.keys.lookupKey({ secret: k.secret }, elsewhere.metadata))).toMatchObject({
      code: status.NOT_FOUND,
      reason: 'KEY_NOT_FOUND',
    });
  });

  /** A real key's secret with its last character changed: the checksum no longer matches. */
  const mistyped = async () => {
    const { secret } = await createKey((await s.admin()).metadata);
    return secret.slice(0, -1) + (secret.endsWith('0') ? '1' : '0');
  };

  it.each([
    ['malformed', async () => 'sk_live_not-a-key'],
    ['mistyped', mistyped],
    ['well-formed but unknown', async () => generateSecret('sk', 'live')],
  ])('NOT_FOUND for a %s secret', async (_what, secret) => {
    expect(await failure(s.clients.keys.lookupKey({ secret: await secret() }, service))).toMatchObject({
      code: status.NOT_FOUND,
      reason: 'KEY_NOT_FOUND',
    });
  });

  it('an empty secret is INVALID_ARGUMENT naming the field', async () => {
    expect(await failure(s.clients.keys.lookupKey({ secret: '' }, service))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      fields: ['secret:INVALID_ARGUMENT'],
    });
  });
});

describe('ReportLeakedKeys', () => {
  it('revokes every reported key not revoked yet and answers each secret in order', async () => {
    const { orgId, metadata } = await s.admin();
    const [live, archived, expired, revoked] = await Promise.all(
      ['live', 'archived', 'expired', 'revoked'].map((n) => createKey(metadata, n)),
    );
    await s.clients.keys.archiveKey({ id: archived.id }, metadata);
    await s.collections.keys.updateOne({ _id: expired.id }, { $set: { expires_at: new Date(Date.now() - 1000) } });
    await s.clients.keys.revokeKey({ id: revoked.id }, metadata);
    const unknown = generateSecret('sk', 'live');
    const before = (await s.clients.keys.getOrganization({}, metadata)).organization!.activeKeys;

    const res = await s.clients.keys.reportLeakedKeys(
      {
        reporter: 'github-secret-scanning',
        secrets: [
          { secret: live.secret, location: 'https://github.com/acme/app/blob/main/.env' },
          { secret: archived.secret },
          { secret: expired.secret },
          { secret: revoked.secret },
          { secret: 'sk_live_garbage' },
          { secret: unknown },
          { secret: live.secret, location: 'https://gist.github.com/x' },
        ],
      },
      service,
    );
    expect(res.reportId).toMatch(/^rpt_[0-9a-hjkmnp-tv-z]{26}$/);
    const k = (key: { id: string }) => ({ keyId: key.id, orgId });
    expect(res.results).toEqual([
      { outcome: REVOKED, ...k(live) },
      { outcome: REVOKED, ...k(archived) },
      { outcome: REVOKED, ...k(expired) },
      { outcome: ALREADY_ENDED, ...k(revoked) },
      { outcome: UNKNOWN, keyId: '', orgId: '' },
      { outcome: UNKNOWN, keyId: '', orgId: '' },
      { outcome: ALREADY_ENDED, ...k(live) },
    ]);

    const got = (await s.clients.keys.getKey({ id: live.id }, metadata)).key!;
    expect(got).toMatchObject({
      state: KeyState.KEY_STATE_REVOKED,
      revokedBy: `leak_report:${res.reportId}`,
      revokedComment: 'leak reported by github-secret-scanning at https://github.com/acme/app/blob/main/.env',
    });
    expect((await stored(archived.id)).revoked_comment).toBe('leak reported by github-secret-scanning');
    expect((await stored(revoked.id)).revoked_by).not.toContain('leak_report');
    for (const key of [live, archived, expired, revoked]) expect(await verify(key.secret)).toBe(VerifyCode.VERIFY_CODE_REVOKED);
    // The live and the expired key held places (an archived key holds none): both are free again.
    expect((await s.clients.keys.getOrganization({}, metadata)).organization!.activeKeys).toBe(before - 2);

    const revokes = await s.collections.audit.find({ org_id: orgId, action: 'key.revoke', actor: 'service:1' }).toArray();
    expect(revokes.map((e) => e.key_id).sort()).toEqual([live.id, archived.id, expired.id].sort());
    const reports = await auditOf(orgId, 'key.leak_report');
    expect(unordered(reports.map((e) => [e.key_id, e.actor, e.details]))).toEqual(
      unordered([
        [
          live.id,
          'service:1',
          {
            report_id: res.reportId,
            reporter: 'github-secret-scanning',
            location: 'https://github.com/acme/app/blob/main/.env',
            outcome: 'REVOKED',
          },
        ],
        [archived.id, 'service:1', { report_id: res.reportId, reporter: 'github-secret-scanning', location: '', outcome: 'REVOKED' }],
        [expired.id, 'service:1', { report_id: res.reportId, reporter: 'github-secret-scanning', location: '', outcome: 'REVOKED' }],
        [revoked.id, 'service:1', { report_id: res.reportId, reporter: 'github-secret-scanning', location: '', outcome: 'ALREADY_ENDED' }],
        [
          live.id,
          'service:1',
          { report_id: res.reportId, reporter: 'github-secret-scanning', location: 'https://gist.github.com/x', outcome: 'ALREADY_ENDED' },
        ],
      ]),
    );
    expect(JSON.stringify(await s.collections.audit.find({ org_id: orgId }).toArray())).not.toContain(live.secret.slice(8));
  });

  it('revokes a key retiring after a rotation and leaves its successor alone; WatchKeyChanges subscribers hear of it', async () => {
    const { metadata } = await s.admin();
    const old = await createKey(metadata);
    const rotated = await s.clients.keys.rotateKey({ id: old.id, overlap: { seconds: 3600, nanos: 0 } }, metadata);
    const subscriber = watch(s.address, service);
    try {
      await subscriber.next((m) => m.event?.$case === 'heartbeat');
      const res = await s.clients.keys.reportLeakedKeys({ reporter: 'scanner', secrets: [{ secret: old.secret }] }, service);
      expect(res.results[0]).toMatchObject({ outcome: REVOKED, keyId: old.id });
      // A new stream may also get the key's creation again (polls re-read a margin of the log): skip it.
      const change = await subscriber.next(
        (m) => changeOf(m)?.keyId === old.id && changeOf(m)?.kind !== KeyChangeKind.KEY_CHANGE_KIND_CREATED,
      );
      expect(changeOf(change)).toMatchObject({ kind: KeyChangeKind.KEY_CHANGE_KIND_CHANGED });
    } finally {
      subscriber.cancel();
    }
    expect(await verify(old.secret)).toBe(VerifyCode.VERIFY_CODE_REVOKED);
    expect(await verify(rotated.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);
  });

  it('staff admins report across organizations; acting as one organization, another’s keys are UNKNOWN and stay live', async () => {
    const { orgId, metadata } = await s.admin();
    const [a, b] = [await createKey(metadata), await createKey(metadata)];
    const elsewhere = await staff(newId('org'));
    const missed = await s.clients.keys.reportLeakedKeys({ reporter: 'ops', secrets: [{ secret: a.secret }] }, elsewhere.metadata);
    expect(missed.results).toEqual([{ outcome: UNKNOWN, keyId: '', orgId: '' }]);
    expect(await verify(a.secret)).toBe(VerifyCode.VERIFY_CODE_VALID);

    const ops = await staff();
    const res = await s.clients.keys.reportLeakedKeys({ reporter: 'ops', secrets: [{ secret: b.secret }] }, ops.metadata);
    expect(res.results).toEqual([{ outcome: REVOKED, keyId: b.id, orgId }]);
    expect((await stored(b.id)).status).toBe('revoked');
    const events = await s.collections.audit.find({ org_id: orgId, key_id: b.id, actor: ops.id }).toArray();
    expect(events.map((e) => e.action).sort()).toEqual(['key.leak_report', 'key.revoke']);
    for (const e of events) expect(e).toMatchObject({ actor: ops.id, acting_as: expect.stringMatching(/@staff\.example$/) });
  });

  it('refuses a report with every violation named, and revokes nothing', async () => {
    const { metadata } = await s.admin();
    const k = await createKey(metadata);
    const r = await failure(
      s.clients.keys.reportLeakedKeys(
        { reporter: ' ', secrets: [{ secret: k.secret }, { secret: k.secret, location: 'x'.repeat(257) }, { secret: '' }] },
        service,
      ),
    );
    expect(r).toMatchObject({
      code: status.INVALID_ARGUMENT,
      fields: ['secrets[1].location:INVALID_ARGUMENT', 'secrets[2].secret:INVALID_ARGUMENT', 'reporter:INVALID_ARGUMENT'],
    });
    expect(await failure(s.clients.keys.reportLeakedKeys({ reporter: 'x', secrets: [] }, service))).toMatchObject({
      fields: ['secrets:INVALID_ARGUMENT'],
    });
    const tooMany = Array.from({ length: 101 }, () => ({ secret: k.secret }));
    expect(await failure(s.clients.keys.reportLeakedKeys({ reporter: 'x', secrets: tooMany }, service))).toMatchObject({
      fields: ['secrets:INVALID_ARGUMENT'],
    });
    expect((await stored(k.id)).status).toBe('active');
  });
});
