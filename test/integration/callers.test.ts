// Every kind of caller × every built RPC, against the real server. MATRIX is the authorization
// table of docs/security.md; each cell asserts the status code and the ErrorInfo reason, and for
// successes and refusals alike, what happened to the data.
import { Metadata, status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearer } from '../../src/client/promiseClient';
import { mintUserToken } from '../../src/dev/tokens';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { KeyState } from '../../src/gen/apikeys/v1/key';
import { LeakOutcome } from '../../src/gen/apikeys/v1/key_service';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import type { Reason } from '../../src/domain/errors';
import { REASON_STATUS } from '../../src/transport/errors';
import { failure, outcome } from '../support/calls';
import { FOREIGN_KEY_FORMATS, foreignSecret } from '../support/foreignFormats';
import { startTestServer, type TestServer } from '../support/server';
import { until } from '../support/until';
import { isHeartbeat, watch } from '../support/watch';

const RPCS = ['CreateKey', 'GetKey', 'ListKeys', 'RevokeKey', 'VerifyKey', 'WatchKeyChanges', 'ReportUsage'] as const;
type Rpc = (typeof RPCS)[number];

const OK = 'OK';
const UNAUTHENTICATED = 'UNAUTHENTICATED/UNAUTHENTICATED';
const INVALID_TOKEN = 'UNAUTHENTICATED/INVALID_TOKEN';
const TOKEN_EXPIRED = 'UNAUTHENTICATED/TOKEN_EXPIRED';
const INVALID_API_KEY = 'UNAUTHENTICATED/INVALID_API_KEY';
const DENIED = 'PERMISSION_DENIED/PERMISSION_DENIED';
const INSUFFICIENT_SCOPE = 'PERMISSION_DENIED/INSUFFICIENT_SCOPE';
const SCOPE_ESCALATION = 'PERMISSION_DENIED/SCOPE_ESCALATION';
const ACTING_AS_FORBIDDEN = 'PERMISSION_DENIED/ACTING_AS_FORBIDDEN';
const BAD_ORG_HEADER = 'INVALID_ARGUMENT/INVALID_ORGANIZATION_ID';
const BAD_REQUEST_ID = 'INVALID_ARGUMENT/INVALID_REQUEST_ID_HEADER';
const NOT_FOUND = 'NOT_FOUND/KEY_NOT_FOUND';
const all = (cell: string) => [cell, cell, cell, cell, cell, cell, cell] as const;

/**
 * Caller × [CreateKey, GetKey, ListKeys, RevokeKey, and VerifyService's VerifyKey, WatchKeyChanges,
 * ReportUsage]. The keys that GetKey, RevokeKey, VerifyKey and ReportUsage name belong to the
 * "home" organization; CreateKey asks for scopes ["read"].
 */
const MATRIX = {
  'anonymous (no credential)': all(UNAUTHENTICATED),
  'anonymous with x-organization-id': all(UNAUTHENTICATED),
  'malformed bearer token': all(INVALID_TOKEN),
  'non-Bearer authorization (Basic)': all(INVALID_TOKEN),
  'expired JWT': all(TOKEN_EXPIRED),
  'JWT with a wrong signature': all(INVALID_TOKEN),
  'JWT with an unknown role': all(INVALID_TOKEN),
  member: [DENIED, OK, OK, DENIED, DENIED, DENIED, DENIED],
  admin: [OK, OK, OK, OK, DENIED, DENIED, DENIED],
  'admin of another org': [OK, NOT_FOUND, OK, NOT_FOUND, DENIED, DENIED, DENIED],
  'staff admin with x-organization-id': [OK, OK, OK, OK, DENIED, DENIED, DENIED],
  'staff member with x-organization-id': [DENIED, OK, OK, DENIED, DENIED, DENIED, DENIED],
  'staff admin without x-organization-id': [OK, NOT_FOUND, OK, NOT_FOUND, DENIED, DENIED, DENIED],
  'non-staff admin with x-organization-id': all(ACTING_AS_FORBIDDEN),
  'unverified staff-domain email with x-organization-id': all(ACTING_AS_FORBIDDEN),
  'staff with a malformed x-organization-id': all(BAD_ORG_HEADER),
  'API key [read]': [INSUFFICIENT_SCOPE, OK, OK, INSUFFICIENT_SCOPE, DENIED, DENIED, DENIED],
  'API key [read, write]': [OK, OK, OK, OK, DENIED, DENIED, DENIED],
  'API key [read, write] via x-api-key': [OK, OK, OK, OK, DENIED, DENIED, DENIED],
  'API key [write]': [SCOPE_ESCALATION, OK, OK, SCOPE_ESCALATION, DENIED, DENIED, DENIED],
  'API key of another org': [OK, NOT_FOUND, OK, NOT_FOUND, DENIED, DENIED, DENIED],
  'API key with x-organization-id': all(ACTING_AS_FORBIDDEN),
  'revoked API key': all(INVALID_API_KEY),
  'archived API key': all(INVALID_API_KEY),
  'expired API key': all(INVALID_API_KEY),
  'unknown API key via x-api-key': all(INVALID_API_KEY),
  'service token': [DENIED, DENIED, DENIED, DENIED, OK, OK, OK],
  'service token with x-organization-id': all(ACTING_AS_FORBIDDEN),
  'unknown service token': all(INVALID_TOKEN),
  'two credentials (authorization and x-api-key)': all(UNAUTHENTICATED),
  'admin with a malformed x-request-id': all(BAD_REQUEST_ID),
} satisfies Record<string, readonly string[]>;
type CallerName = keyof typeof MATRIX;

const BACKOFFICE_RPCS = ['GetOrganization', 'SetOrganizationKeyLimit', 'LookupKey', 'ReportLeakedKeys'] as const;
type BackofficeRpc = (typeof BACKOFFICE_RPCS)[number];
const allFour = (cell: string) => [cell, cell, cell, cell] as const;

/**
 * The same callers × [GetOrganization, SetOrganizationKeyLimit, LookupKey, ReportLeakedKeys]
 * (docs/security.md, its own table). LookupKey and ReportLeakedKeys present secrets of "home" keys.
 */
const BACKOFFICE_MATRIX = {
  'anonymous (no credential)': allFour(UNAUTHENTICATED),
  'anonymous with x-organization-id': allFour(UNAUTHENTICATED),
  'malformed bearer token': allFour(INVALID_TOKEN),
  'non-Bearer authorization (Basic)': allFour(INVALID_TOKEN),
  'expired JWT': allFour(TOKEN_EXPIRED),
  'JWT with a wrong signature': allFour(INVALID_TOKEN),
  'JWT with an unknown role': allFour(INVALID_TOKEN),
  member: allFour(DENIED),
  admin: [OK, DENIED, DENIED, DENIED],
  'admin of another org': [OK, DENIED, DENIED, DENIED],
  'staff admin with x-organization-id': allFour(OK),
  'staff member with x-organization-id': [OK, DENIED, OK, DENIED],
  'staff admin without x-organization-id': allFour(OK),
  'non-staff admin with x-organization-id': allFour(ACTING_AS_FORBIDDEN),
  'unverified staff-domain email with x-organization-id': allFour(ACTING_AS_FORBIDDEN),
  'staff with a malformed x-organization-id': allFour(BAD_ORG_HEADER),
  'API key [read]': allFour(DENIED),
  'API key [read, write]': allFour(DENIED),
  'API key [read, write] via x-api-key': allFour(DENIED),
  'API key [write]': allFour(DENIED),
  'API key of another org': allFour(DENIED),
  'API key with x-organization-id': allFour(ACTING_AS_FORBIDDEN),
  'revoked API key': allFour(INVALID_API_KEY),
  'archived API key': allFour(INVALID_API_KEY),
  'expired API key': allFour(INVALID_API_KEY),
  'unknown API key via x-api-key': allFour(INVALID_API_KEY),
  'service token': [DENIED, DENIED, OK, OK],
  'service token with x-organization-id': allFour(ACTING_AS_FORBIDDEN),
  'unknown service token': allFour(INVALID_TOKEN),
  'two credentials (authorization and x-api-key)': allFour(UNAUTHENTICATED),
  'admin with a malformed x-request-id': allFour(BAD_REQUEST_ID),
} satisfies Record<CallerName, readonly string[]>;

/**
 * Caller × ImportKeys: docs/security.md's "## Authorization of ImportKeys" table. Admin users only
 * (staff acting with their own role); never an API key, whatever its scopes. Each call imports
 * one new key into the caller's organization.
 */
const IMPORT_MATRIX: Record<CallerName, string> = {
  'anonymous (no credential)': UNAUTHENTICATED,
  'anonymous with x-organization-id': UNAUTHENTICATED,
  'malformed bearer token': INVALID_TOKEN,
  'non-Bearer authorization (Basic)': INVALID_TOKEN,
  'expired JWT': TOKEN_EXPIRED,
  'JWT with a wrong signature': INVALID_TOKEN,
  'JWT with an unknown role': INVALID_TOKEN,
  member: DENIED,
  admin: OK,
  'admin of another org': OK,
  'staff admin with x-organization-id': OK,
  'staff member with x-organization-id': DENIED,
  'staff admin without x-organization-id': OK,
  'non-staff admin with x-organization-id': ACTING_AS_FORBIDDEN,
  'unverified staff-domain email with x-organization-id': ACTING_AS_FORBIDDEN,
  'staff with a malformed x-organization-id': BAD_ORG_HEADER,
  'API key [read]': DENIED,
  'API key [read, write]': DENIED,
  'API key [read, write] via x-api-key': DENIED,
  'API key [write]': DENIED,
  'API key of another org': DENIED,
  'API key with x-organization-id': ACTING_AS_FORBIDDEN,
  'revoked API key': INVALID_API_KEY,
  'archived API key': INVALID_API_KEY,
  'expired API key': INVALID_API_KEY,
  'unknown API key via x-api-key': INVALID_API_KEY,
  'service token': DENIED,
  'service token with x-organization-id': ACTING_AS_FORBIDDEN,
  'unknown service token': INVALID_TOKEN,
  'two credentials (authorization and x-api-key)': UNAUTHENTICATED,
  'admin with a malformed x-request-id': BAD_REQUEST_ID,
};

/**
 * MATRIX as docs/security.md's "## Authorization" table (the test at the end keeps the two equal).
 * A refusal shows its reason only: the README's error table gives each reason's one gRPC code.
 */
function authorizationTable(rpcs: readonly string[] = RPCS, matrix: Record<string, readonly string[]> = MATRIX): string {
  const cell = (c: string) => (c === OK ? '✓' : `\`${c.split('/')[1]}\``);
  return [
    `| Caller | ${rpcs.join(' | ')} |`,
    `|---|${rpcs.map(() => '---').join('|')}|`,
    ...Object.entries(matrix).map(([caller, row]) => `| ${caller} | ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** A caller: its metadata and the organization its calls act on (none: refused before that matters). */
interface Caller {
  metadata: Metadata;
  org?: string;
}

let s: TestServer;
let home: string;
let callers: Record<CallerName, Caller>;
/** Read by GetKey and ListKeys; RevokeKey gets a fresh key per cell. */
let target: string;
let verifiedSecret: string;
/** The key ReportUsage reports uses of. */
let reported: string;

const withHeaders = (md: Metadata, extra: Record<string, string>) => {
  const out = md.clone();
  for (const [k, v] of Object.entries(extra)) out.set(k, v);
  return out;
};

async function createKey(metadata: Metadata, extra: Record<string, unknown> = {}) {
  const { key, secret } = await s.clients.keys.createKey({ name: 'fixture', scopes: ['read'], ...extra }, metadata);
  return { id: key!.id, orgId: key!.orgId, secret };
}

beforeAll(async () => {
  // ops.work: a staff domain with a "k", which a KELVIN SIGN look-alike lowercases into.
  // Both matrices present bad API keys from this one address, more often than AUTH_FAILURE_LIMIT allows by default.
  s = await startTestServer('callers', {
    ORG_KEY_LIMIT: '1000',
    STAFF_EMAIL_DOMAINS: 'staff.example,ops.work',
    AUTH_FAILURE_LIMIT: '1000',
    FOREIGN_KEY_FORMATS,
    USAGE_FLUSH_INTERVAL_MS: '100',
  });
  const admin = await s.admin();
  home = admin.orgId;
  const other = newId('org');
  const staffOrg = newId('org');
  const user = (claims: Parameters<TestServer['userToken']>[0], ttl?: string | number) =>
    s.userToken({ orgId: home, ...claims }, ttl).then((t) => bearer(t));
  const staff = { orgId: staffOrg, email: 'ops@staff.example', emailVerified: true };
  const apiKey = async (scopes: string[], metadata = admin.metadata) => (await createKey(metadata, { scopes })).secret;

  target = (await createKey(admin.metadata)).id;
  verifiedSecret = (await createKey(admin.metadata)).secret;
  reported = (await createKey(admin.metadata)).id;
  const readKey = await apiKey(['read']);
  const rwKey = await apiKey(['read', 'write']);
  const writeKey = await apiKey(['write']);
  const otherKey = await apiKey(['read', 'write'], (await s.admin(other)).metadata);
  const revoked = await createKey(admin.metadata);
  await s.clients.keys.revokeKey({ id: revoked.id }, admin.metadata);
  const archived = await createKey(admin.metadata);
  await s.clients.keys.archiveKey({ id: archived.id }, admin.metadata);
  // Expiry takes time: written directly, before the key is ever presented (so no cache holds it as active).
  const expired = await createKey(admin.metadata, { expireTime: new Date(Date.now() + 3_600_000) });
  await s.collections.keys.updateOne({ _id: expired.id }, { $set: { expires_at: new Date(Date.now() - 1000) } });

  const adminMd = await user({ role: 'admin' });
  callers = {
    'anonymous (no credential)': { metadata: new Metadata() },
    'anonymous with x-organization-id': { metadata: withHeaders(new Metadata(), { 'x-organization-id': home }) },
    'malformed bearer token': { metadata: bearer('not a token') },
    'non-Bearer authorization (Basic)': { metadata: withHeaders(new Metadata(), { authorization: 'Basic dXNlcjpwYXNz' }) },
    'expired JWT': { metadata: await user({ role: 'admin' }, Math.floor(Date.now() / 1000) - 60) },
    'JWT with a wrong signature': {
      metadata: bearer(await mintUserToken(randomBytes(32).toString('hex'), { sub: newId('usr'), orgId: home, role: 'admin' })),
    },
    'JWT with an unknown role': { metadata: await user({ role: 'owner' as 'admin' }) },
    member: { metadata: await user({ role: 'member' }), org: home },
    admin: { metadata: adminMd, org: home },
    'admin of another org': { metadata: await user({ role: 'admin', orgId: other }), org: other },
    'staff admin with x-organization-id': {
      metadata: withHeaders(await user({ role: 'admin', ...staff }), { 'x-organization-id': home }),
      org: home,
    },
    'staff member with x-organization-id': {
      metadata: withHeaders(await user({ role: 'member', ...staff }), { 'x-organization-id': home }),
      org: home,
    },
    'staff admin without x-organization-id': { metadata: await user({ role: 'admin', ...staff }), org: staffOrg },
    'non-staff admin with x-organization-id': {
      metadata: withHeaders(await user({ role: 'admin', email: 'dev@customer.example', emailVerified: true }), {
        'x-organization-id': other,
      }),
    },
    'unverified staff-domain email with x-organization-id': {
      metadata: withHeaders(await user({ role: 'admin', ...staff, emailVerified: false }), { 'x-organization-id': home }),
    },
    'staff with a malformed x-organization-id': {
      metadata: withHeaders(await user({ role: 'admin', ...staff }), { 'x-organization-id': 'org_123' }),
    },
    'API key [read]': { metadata: bearer(readKey), org: home },
    'API key [read, write]': { metadata: bearer(rwKey), org: home },
    'API key [read, write] via x-api-key': { metadata: withHeaders(new Metadata(), { 'x-api-key': rwKey }), org: home },
    'API key [write]': { metadata: bearer(writeKey), org: home },
    'API key of another org': { metadata: bearer(otherKey), org: other },
    'API key with x-organization-id': { metadata: bearer(rwKey, { 'x-organization-id': home }) },
    'revoked API key': { metadata: bearer(revoked.secret) },
    'archived API key': { metadata: bearer(archived.secret) },
    'expired API key': { metadata: bearer(expired.secret) },
    'unknown API key via x-api-key': { metadata: withHeaders(new Metadata(), { 'x-api-key': generateSecret('sk', 'live') }) },
    'service token': { metadata: bearer(s.verifyToken) },
    'service token with x-organization-id': { metadata: bearer(s.verifyToken, { 'x-organization-id': home }) },
    'unknown service token': { metadata: bearer(`vt_${randomBytes(24).toString('base64url')}`) },
    'two credentials (authorization and x-api-key)': { metadata: withHeaders(adminMd, { 'x-api-key': rwKey }) },
    'admin with a malformed x-request-id': { metadata: withHeaders(adminMd, { 'x-request-id': 'has spaces' }) },
  };
});
afterAll(() => s.stop());

/** Makes one call and checks, beyond the code, what it did or did not do to the data. */
async function call(rpc: Rpc, caller: Caller, cellId: string): Promise<string> {
  const md = caller.metadata;
  switch (rpc) {
    case 'CreateKey': {
      const r = await outcome(s.clients.keys.createKey({ name: cellId, scopes: ['read'] }, md));
      if (r.value) expect(r.value.key!.orgId).toBe(caller.org);
      expect(await s.collections.keys.countDocuments({ name: cellId })).toBe(r.value ? 1 : 0);
      return r.text;
    }
    case 'GetKey': {
      const r = await outcome(s.clients.keys.getKey({ id: target }, md));
      if (r.value) expect(r.value.key!.id).toBe(target);
      return r.text;
    }
    case 'ListKeys': {
      const r = await outcome(s.clients.keys.listKeys({ pageSize: 100 }, md));
      if (r.value) {
        // Only the effective organization's keys, ever.
        expect(r.value.keys.every((k) => k.orgId === caller.org)).toBe(true);
        expect(r.value.keys.some((k) => k.id === target)).toBe(caller.org === home);
      }
      return r.text;
    }
    case 'RevokeKey': {
      const victim = (await createKey((await s.admin(home)).metadata)).id;
      const r = await outcome(s.clients.keys.revokeKey({ id: victim }, md));
      if (r.value) expect(r.value.key).toMatchObject({ id: victim, state: KeyState.KEY_STATE_REVOKED });
      expect((await s.collections.keys.findOne({ _id: victim }))!.status).toBe(r.value ? 'revoked' : 'active');
      return r.text;
    }
    case 'VerifyKey': {
      const r = await outcome(s.clients.verify.verifyKey({ key: verifiedSecret }, md));
      if (r.value) expect(r.value).toMatchObject({ valid: true, code: VerifyCode.VERIFY_CODE_VALID, orgId: home });
      return r.text;
    }
    case 'WatchKeyChanges': {
      // Granted, the stream opens with a heartbeat; refused, it ends with the error before any message.
      const w = watch(s.address, md);
      const first = await Promise.race([w.next(() => true).then((m) => ({ m })), w.ended]);
      w.cancel();
      if ('m' in first) {
        expect(isHeartbeat(first.m)).toBe(true);
        return OK;
      }
      expect(w.messages).toEqual([]);
      return (await outcome(Promise.reject(first.ok ? new Error('the stream ended cleanly at once') : first.error))).text;
    }
    case 'ReportUsage': {
      const before = await s.collections.lastUsed.findOne({ _id: reported });
      const at = new Date(Math.max(Date.now(), (before?.last_used_at.getTime() ?? 0) + 1));
      const r = await outcome(s.clients.verify.reportUsage({ entries: [{ keyId: reported, count: 1, lastUsedTime: at }] }, md));
      // Recorded at the next usage flush; a refusal records nothing.
      if (r.value)
        await until(
          'the reported use',
          async () => (await s.collections.lastUsed.findOne({ _id: reported }))?.last_used_at.getTime() === at.getTime(),
        );
      else expect((await s.collections.lastUsed.findOne({ _id: reported }))?.last_used_at.getTime()).toBe(before?.last_used_at.getTime());
      return r.text;
    }
  }
}

describe('the authorization matrix (docs/security.md "Authorization")', () => {
  const cells = Object.entries(MATRIX).flatMap(([caller, row]) => RPCS.map((rpc, i) => [rpc, caller as CallerName, row[i]] as const));
  it.each(cells)('%s as %s → %s', async (rpc, caller, expected) => {
    expect(await call(rpc, callers[caller], `${caller}/${rpc}`)).toBe(expected);
  });
});

/** One call of the organization and leaked-key RPCs, checked like `call`. */
async function callBackoffice(rpc: BackofficeRpc, caller: Caller, cellId: string): Promise<string> {
  const md = caller.metadata;
  switch (rpc) {
    case 'GetOrganization': {
      const r = await outcome(s.clients.keys.getOrganization({}, md));
      if (r.value) expect(r.value.organization!.id).toBe(caller.org);
      return r.text;
    }
    case 'SetOrganizationKeyLimit': {
      // A limit of this cell's own, well above what the other cells create.
      const keyLimit = 2000 + Object.keys(BACKOFFICE_MATRIX).indexOf(cellId.split('/')[0]);
      const r = await outcome(s.clients.keys.setOrganizationKeyLimit({ keyLimit }, md));
      if (r.value) expect(r.value.organization).toMatchObject({ id: caller.org, keyLimit });
      const org = caller.org && (await s.collections.organizations.findOne({ _id: caller.org }));
      expect(org ? org.key_limit === keyLimit : false).toBe(Boolean(r.value));
      return r.text;
    }
    case 'LookupKey': {
      const r = await outcome(s.clients.keys.lookupKey({ secret: verifiedSecret }, md));
      if (r.value) expect(verifiedSecret.startsWith(r.value.key!.start) && r.value.key!.orgId === home).toBe(true);
      return r.text;
    }
    case 'ReportLeakedKeys': {
      const victim = await createKey((await s.admin(home)).metadata);
      const r = await outcome(s.clients.keys.reportLeakedKeys({ reporter: cellId, secrets: [{ secret: victim.secret }] }, md));
      if (r.value) expect(r.value.results).toEqual([{ outcome: LeakOutcome.LEAK_OUTCOME_REVOKED, keyId: victim.id, orgId: home }]);
      expect((await s.collections.keys.findOne({ _id: victim.id }))!.status).toBe(r.value ? 'revoked' : 'active');
      return r.text;
    }
  }
}

describe('the authorization matrix of the organization and leaked-key RPCs', () => {
  const cells = Object.entries(BACKOFFICE_MATRIX).flatMap(([caller, row]) =>
    BACKOFFICE_RPCS.map((rpc, i) => [rpc, caller as CallerName, row[i]] as const),
  );
  it.each(cells)('%s as %s → %s', async (rpc, caller, expected) => {
    expect(await callBackoffice(rpc, callers[caller], `${caller}/${rpc}`)).toBe(expected);
  });
});

describe('ImportKeys authorization (docs/security.md "Authorization of ImportKeys")', () => {
  it.each(Object.entries(IMPORT_MATRIX))('ImportKeys as %s → %s', async (caller, expected) => {
    const name = `${caller}/ImportKeys`;
    const secret = foreignSecret('fnp');
    const r = await outcome(
      s.clients.keys.importKeys(
        { keys: [{ secretOrHash: { $case: 'secret', value: secret }, format: 'fnp', name, scopes: ['read'] }] },
        callers[caller as CallerName].metadata,
      ),
    );
    const imported = r.value?.results[0].result;
    if (r.value) expect(imported).toMatchObject({ $case: 'key', value: { orgId: callers[caller as CallerName].org, name } });
    expect(await s.collections.keys.countDocuments({ name })).toBe(r.value ? 1 : 0);
    expect(r.text).toBe(expected);
  });
});

describe('GetKeyUsage: GetKey’s column for one key, ListKeys’ for the whole organization (docs/security.md)', () => {
  const [getKey, listKeys] = [RPCS.indexOf('GetKey'), RPCS.indexOf('ListKeys')];
  const cells = Object.entries(MATRIX).flatMap(([caller, row]) => [
    ['key_id', caller as CallerName, row[getKey]] as const,
    ['organization', caller as CallerName, row[listKeys]] as const,
  ]);
  it.each(cells)('GetKeyUsage for the %s as %s → %s', async (form, caller, expected) => {
    const r = await outcome(s.clients.keys.getKeyUsage(form === 'key_id' ? { keyId: target } : {}, callers[caller].metadata));
    // The target was never verified: nothing to count, whoever may read it.
    if (form === 'key_id' && r.value) expect(r.value.days).toEqual([]);
    expect(r.text).toBe(expected);
  });
});

describe('no escalation: a key never grants scopes it lacks', () => {
  let admin: Metadata;
  beforeAll(async () => {
    admin = bearer(await s.userToken({ orgId: home }));
  });
  const keyWith = async (scopes: string[]) => bearer((await createKey(admin, { scopes })).secret);

  // Decided: a read key is refused for lacking `write` (INSUFFICIENT_SCOPE), before the scopes it
  // asks for are looked at; SCOPE_ESCALATION is for keys that may create but ask for more.
  it('a [read] key creating a [write] key: INSUFFICIENT_SCOPE', async () => {
    expect(await failure(s.clients.keys.createKey({ name: 'up', scopes: ['write'] }, await keyWith(['read'])))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'INSUFFICIENT_SCOPE',
    });
  });

  it.each([
    [['write'], ['read', 'write']],
    [['write'], ['read']],
    [
      ['read', 'write'],
      ['read', 'write', 'billing:admin'],
    ],
  ])('a %j key creating a %j key: SCOPE_ESCALATION', async (has, asks) => {
    const name = `escalate-${randomBytes(4).toString('hex')}`;
    expect(await failure(s.clients.keys.createKey({ name, scopes: asks }, await keyWith(has)))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'SCOPE_ESCALATION',
    });
    expect(await s.collections.keys.countDocuments({ name })).toBe(0);
  });

  it('a key may create a key with its own scopes or fewer, recorded as created by the key', async () => {
    const creator = await createKey(admin, { scopes: ['read', 'write'] });
    const same = await s.clients.keys.createKey({ name: 'same', scopes: ['write', 'read'] }, bearer(creator.secret));
    const fewer = await s.clients.keys.createKey({ name: 'fewer', scopes: ['read'] }, bearer(creator.secret));
    expect(same.key!.createdBy).toBe(creator.id);
    expect(fewer.key!.scopes).toEqual(['read']);
  });

  // A key must never widen itself: updating its own scopes upward fails.
  it.each([
    [['write'], ['read', 'write'], 'PERMISSION_DENIED/SCOPE_ESCALATION'],
    [['read', 'write'], ['read', 'write', 'billing:admin'], 'PERMISSION_DENIED/SCOPE_ESCALATION'],
    [['read'], ['read', 'write'], 'PERMISSION_DENIED/INSUFFICIENT_SCOPE'],
  ])('a %j key updating its own scopes to %j: %s, and its scopes stay', async (has, asks, expected) => {
    const own = await createKey(admin, { scopes: has });
    const r = await outcome(s.clients.keys.updateKey({ key: { id: own.id, scopes: asks }, updateMask: ['scopes'] }, bearer(own.secret)));
    expect(r.text).toBe(expected);
    expect((await s.collections.keys.findOne({ _id: own.id }))!.scopes).toEqual(has);
  });

  it('a key may update its own scopes downward', async () => {
    const own = await createKey(admin, { scopes: ['read', 'write'] });
    const r = await s.clients.keys.updateKey({ key: { id: own.id, scopes: ['write'] }, updateMask: ['scopes'] }, bearer(own.secret));
    expect(r.key!.scopes).toEqual(['write']);
  });
});

describe('self-revoke (allow_self_revoke)', () => {
  let admin: Metadata;
  beforeAll(async () => {
    admin = bearer(await s.userToken({ orgId: home }));
  });
  const statusOf = async (id: string) => (await s.collections.keys.findOne({ _id: id }))!.status;

  it('a [read] key with allow_self_revoke revokes itself, and is refused from then on', async () => {
    const k = await createKey(admin, { scopes: ['read'], allowSelfRevoke: true });
    const revoked = (await s.clients.keys.revokeKey({ id: k.id, comment: 'leaked' }, bearer(k.secret))).key!;
    expect(revoked).toMatchObject({ state: KeyState.KEY_STATE_REVOKED, revokedBy: k.id, revokedComment: 'leaked' });
    expect(await failure(s.clients.keys.listKeys({}, bearer(k.secret)))).toMatchObject({
      code: status.UNAUTHENTICATED,
      reason: 'INVALID_API_KEY',
    });
  });

  it('without allow_self_revoke a [read] key may not revoke itself: INSUFFICIENT_SCOPE', async () => {
    const k = await createKey(admin, { scopes: ['read'] });
    expect(await failure(s.clients.keys.revokeKey({ id: k.id }, bearer(k.secret)))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'INSUFFICIENT_SCOPE',
    });
    expect(await statusOf(k.id)).toBe('active');
  });

  it('allow_self_revoke covers only itself: revoking another key is INSUFFICIENT_SCOPE', async () => {
    const k = await createKey(admin, { scopes: ['read'], allowSelfRevoke: true });
    const other = await createKey(admin);
    expect(await failure(s.clients.keys.revokeKey({ id: other.id }, bearer(k.secret)))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'INSUFFICIENT_SCOPE',
    });
    expect(await statusOf(other.id)).toBe('active');
  });
});

describe('staff acting-as', () => {
  it('records the real actor on what it does in the target organization, reads included, in the audit trail', async () => {
    const staffId = newId('usr');
    const staff = bearer(await s.userToken({ sub: staffId, orgId: newId('org'), email: 'Ops@Staff.Example', emailVerified: true }), {
      'x-organization-id': home,
      'x-request-id': `acting-${staffId}`,
    });
    const created = (await s.clients.keys.createKey({ name: 'by-staff', scopes: ['read'] }, staff)).key!;
    expect(created).toMatchObject({ orgId: home, createdBy: staffId });
    await s.clients.keys.listKeys({}, staff);
    const revoked = (await s.clients.keys.revokeKey({ id: created.id }, staff)).key!;
    expect(revoked.revokedBy).toBe(staffId);

    const events = await s.collections.audit.find({ actor: staffId }).sort({ time: 1, _id: 1 }).toArray();
    expect(events.map((e) => [e.action, e.org_id, e.acting_as, e.method, e.request_id, e.outcome])).toEqual(
      ['CreateKey', 'ListKeys', 'RevokeKey'].map((m): unknown[] => [
        expect.any(String),
        home,
        'ops@staff.example',
        `/apikeys.v1.KeyService/${m}`,
        `acting-${staffId}`,
        'OK',
      ]),
    );
  });

  it('does not take "a@staff.example@elsewhere" for a staff address', async () => {
    const md = bearer(await s.userToken({ orgId: newId('org'), email: 'a@staff.example@evil.example', emailVerified: true }), {
      'x-organization-id': home,
    });
    expect(await failure(s.clients.keys.listKeys({}, md))).toMatchObject({ code: status.PERMISSION_DENIED, reason: 'ACTING_AS_FORBIDDEN' });
  });

  it('does not take a non-ASCII look-alike of a staff domain for it ("ops.wor\u212A": KELVIN SIGN lowercases to "k")', async () => {
    const actingAs = async (email: string) =>
      bearer(await s.userToken({ orgId: newId('org'), email, emailVerified: true }), { 'x-organization-id': home });
    expect((await s.clients.keys.getKey({ id: target }, await actingAs('alice@ops.work'))).key!.orgId).toBe(home);
    expect(await failure(s.clients.keys.getKey({ id: target }, await actingAs('alice@ops.wor\u212A')))).toMatchObject({
      code: status.PERMISSION_DENIED,
      reason: 'ACTING_AS_FORBIDDEN',
    });
  });
});

describe('docs/security.md', () => {
  it('can show reasons only: each refusal in the matrices has the code its reason maps to', () => {
    const refusals = [...Object.values(MATRIX).flat(), ...Object.values(BACKOFFICE_MATRIX).flat(), ...Object.values(IMPORT_MATRIX)].filter(
      (c) => c !== OK,
    );
    for (const c of new Set(refusals)) {
      const [code, reason] = c.split('/');
      expect([c, status[REASON_STATUS[reason as Reason].code]]).toEqual([c, code]);
    }
  });

  /** The tables of the section under `heading` in docs/security.md, as `expected` must read. */
  function expectSectionTable(heading: string, expected: string): void {
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'security.md'), 'utf8');
    const section = doc.split(new RegExp(`^## ${heading}\\s*$`, 'm'))[1]?.split(/^## /m)[0] ?? '';
    const norm = (line: string) => (/^\|[\s:|-]+\|$/.test(line.trim()) ? '|---|' : line.replace(/`/g, '').replace(/\s+/g, ' ').trim());
    const table = (md: string) =>
      md
        .split('\n')
        .filter((l) => l.trim().startsWith('|'))
        .map(norm);
    if (table(section).join('\n') !== table(expected).join('\n')) {
      throw new Error(`docs/security.md "## ${heading}" must carry this table (from this file):\n\n${expected}\n`);
    }
  }

  it('carries MATRIX as its "## Authorization" table, cell for cell', () => {
    expectSectionTable('Authorization', authorizationTable());
  });

  it('carries BACKOFFICE_MATRIX as the table of its organization and leaked-key section, cell for cell', () => {
    expectSectionTable('Organizations and leaked keys', authorizationTable(BACKOFFICE_RPCS, BACKOFFICE_MATRIX));
  });

  it('carries IMPORT_MATRIX as its "## Authorization of ImportKeys" table, cell for cell', () => {
    expectSectionTable(
      'Authorization of ImportKeys',
      authorizationTable(['ImportKeys'], Object.fromEntries(Object.entries(IMPORT_MATRIX).map(([c, v]) => [c, [v]]))),
    );
  });
});
