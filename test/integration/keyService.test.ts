import { status } from '@grpc/grpc-js';
import { KeyState } from '../../src/gen/apikeys/v1/key';
import { newId } from '../../src/domain/ids';
import { asServiceError, failure } from '../support/calls';
import { decodeStatusDetails, startTestServer, type TestServer } from '../support/server';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer('keysvc', { ORG_KEY_LIMIT: '1000' });
});
afterAll(() => s.stop());

describe('create → get → list → revoke', () => {
  it('runs the whole first lifecycle and returns the secret only from CreateKey', async () => {
    const { orgId, metadata } = await s.admin();
    const created = await s.clients.keys.createKey(
      { name: '  production-web ', scopes: ['read', 'write'], environment: 'live', metadata: { team: 'web' } },
      metadata,
    );
    const key = created.key!;
    expect(created.secret).toMatch(/^sk_live_[0-9A-Za-z]{38}$/);
    expect(key.id).toMatch(/^key_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(key.orgId).toBe(orgId);
    expect(key.name).toBe('production-web');
    expect(key.state).toBe(KeyState.KEY_STATE_ACTIVE);
    expect(key.start).toBe(created.secret.slice(0, 12));
    expect(key.maskedKey).toBe(`${created.secret.slice(0, 12)}…${created.secret.slice(-4)}`);
    expect(key.fingerprint).toMatch(/^[0-9a-f]{6}$/);
    expect(key.metadata).toEqual({ team: 'web' });

    const got = (await s.clients.keys.getKey({ id: key.id }, metadata)).key!;
    const listed = await s.clients.keys.listKeys({}, metadata);
    expect(got.id).toBe(key.id);
    expect(listed.keys.map((k) => k.id)).toEqual([key.id]);
    expect(listed.nextPageToken).toBe('');

    const revoked = (await s.clients.keys.revokeKey({ id: key.id, comment: 'rotated' }, metadata)).key!;
    expect(revoked.state).toBe(KeyState.KEY_STATE_REVOKED);
    expect(revoked.revokedComment).toBe('rotated');
    expect(revoked.revokedBy).toMatch(/^usr_/);
    expect(revoked.revokeTime).toBeInstanceOf(Date);

    // Revoked keys leave the default listing and come back with include_revoked.
    expect((await s.clients.keys.listKeys({}, metadata)).keys).toHaveLength(0);
    expect((await s.clients.keys.listKeys({ includeRevoked: true }, metadata)).keys.map((k) => k.id)).toEqual([key.id]);
    // Revoke is terminal.
    expect(await failure(s.clients.keys.revokeKey({ id: key.id }, metadata))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: 'KEY_REVOKED',
    });

    // The plaintext appears nowhere but in CreateKey's response: not in other answers, not stored.
    const answers = JSON.stringify([got, listed, revoked]);
    expect(answers).not.toContain(created.secret);
    const stored = await s.collections.keys.findOne({ _id: key.id });
    expect(JSON.stringify(stored)).not.toContain(created.secret);
    expect(stored!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(s.logs.join('')).not.toContain(created.secret);
  });
});

describe('ListKeys pagination (AIP-158)', () => {
  async function createMany(metadata: Parameters<typeof s.clients.keys.createKey>[1], n: number, prefix: string) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push((await s.clients.keys.createKey({ name: `${prefix}-${i}`, scopes: ['read'] }, metadata)).key!.id);
    }
    return ids;
  }

  async function pageThrough(metadata: Parameters<typeof s.clients.keys.listKeys>[1], during?: () => Promise<unknown>) {
    const pages: string[][] = [];
    let token = '';
    do {
      const page = await s.clients.keys.listKeys({ pageSize: 20, pageToken: token }, metadata);
      pages.push(page.keys.map((k) => k.id));
      token = page.nextPageToken;
      if (during) await during();
    } while (token !== '');
    return pages;
  }

  it('returns 45 keys in 3 pages with none missing or repeated', async () => {
    const { metadata } = await s.admin();
    const ids = await createMany(metadata, 45, 'p');
    const pages = await pageThrough(metadata);
    expect(pages.map((p) => p.length)).toEqual([20, 20, 5]);
    expect(pages.flat().sort()).toEqual([...ids].sort());
  });

  it('still returns each of the 45 exactly once while keys are created concurrently', async () => {
    const { metadata } = await s.admin();
    const ids = await createMany(metadata, 45, 'c');
    let extra = 0;
    const pages = await pageThrough(metadata, () =>
      Promise.all([1, 2, 3].map(() => s.clients.keys.createKey({ name: `during-${extra++}`, scopes: ['read'] }, metadata))),
    );
    const seen = pages.flat();
    expect(pages).toHaveLength(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
  });

  it('coerces page_size above 100 and rejects tampered or foreign page tokens', async () => {
    const a = await s.admin();
    const b = await s.admin();
    await createMany(a.metadata, 3, 't');
    const first = await s.clients.keys.listKeys({ pageSize: 2 }, a.metadata);
    expect(first.keys).toHaveLength(2);
    expect(first.nextPageToken).not.toBe('');
    const big = await s.clients.keys.listKeys({ pageSize: 100000 }, a.metadata);
    expect(big.keys).toHaveLength(3);

    const tampered = first.nextPageToken.slice(0, -2) + (first.nextPageToken.endsWith('AA') ? 'BB' : 'AA');
    for (const [token, md, extra] of [
      [tampered, a.metadata, {}],
      [first.nextPageToken, b.metadata, {}],
      [first.nextPageToken, a.metadata, { includeRevoked: true }],
      ['not-a-token', a.metadata, {}],
    ] as const) {
      expect(await failure(s.clients.keys.listKeys({ pageSize: 2, pageToken: token, ...extra }, md))).toEqual({
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_PAGE_TOKEN',
        domain: 'apikeys.v1',
        fields: ['page_token:INVALID_PAGE_TOKEN'],
      });
    }
    expect(await failure(s.clients.keys.listKeys({ pageSize: -1 }, a.metadata))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_PAGE_SIZE',
    });
  });
});

describe('the plan limit', () => {
  it('lets exactly 10 of 30 concurrent creates succeed against a cap of 10', async () => {
    const capped = await startTestServer('cap', { ORG_KEY_LIMIT: '10' });
    try {
      const { orgId, metadata } = await capped.admin();
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) => capped.clients.keys.createKey({ name: `k${i}`, scopes: ['read'] }, metadata)),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(10);
      expect(rejected).toHaveLength(20);
      for (const r of rejected) {
        const err = asServiceError(r.reason);
        expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
        expect(decodeStatusDetails(err).errorInfo?.reason).toBe('PLAN_LIMIT_REACHED');
      }
      expect(await capped.collections.keys.countDocuments({ org_id: orgId, status: 'active' })).toBe(10);

      // Revoking frees a slot; the next create fits, the one after does not.
      const victim = (ok[0] as PromiseFulfilledResult<{ key?: { id: string } }>).value.key!.id;
      await capped.clients.keys.revokeKey({ id: victim }, metadata);
      await capped.clients.keys.createKey({ name: 'after-revoke', scopes: ['read'] }, metadata);
      expect(await failure(capped.clients.keys.createKey({ name: 'one-too-many', scopes: ['read'] }, metadata))).toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
        reason: 'PLAN_LIMIT_REACHED',
      });
    } finally {
      await capped.stop();
    }
  });
});

describe('organization isolation', () => {
  it('answers NOT_FOUND for a key of another organization, for get and revoke, and lists none of it', async () => {
    const a = await s.admin();
    const b = await s.admin();
    const key = (await s.clients.keys.createKey({ name: 'a-key', scopes: ['read'] }, a.metadata)).key!;
    for (const call of [s.clients.keys.getKey({ id: key.id }, b.metadata), s.clients.keys.revokeKey({ id: key.id }, b.metadata)]) {
      expect(await failure(call)).toMatchObject({ code: status.NOT_FOUND, reason: 'KEY_NOT_FOUND' });
    }
    expect((await s.clients.keys.listKeys({}, b.metadata)).keys).toHaveLength(0);
    expect((await s.clients.keys.getKey({ id: key.id }, a.metadata)).key!.state).toBe(KeyState.KEY_STATE_ACTIVE);
  });

  it('answers NOT_FOUND for a well-formed id that does not exist', async () => {
    const a = await s.admin();
    expect(await failure(s.clients.keys.getKey({ id: newId('key') }, a.metadata))).toMatchObject({
      code: status.NOT_FOUND,
      reason: 'KEY_NOT_FOUND',
    });
  });
});

describe('validation', () => {
  const past = new Date(Date.now() - 60_000);
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['empty name', { name: '   ', scopes: ['read'] }, 'name:NAME_REQUIRED'],
    ['long name', { name: 'x'.repeat(129), scopes: ['read'] }, 'name:NAME_TOO_LONG'],
    ['control characters in name', { name: 'a\u0000b', scopes: ['read'] }, 'name:INVALID_NAME'],
    ['no scopes', { name: 'n', scopes: [] }, 'scopes:INVALID_SCOPES'],
    ['bad scope', { name: 'n', scopes: ['READ ME'] }, 'scopes[0]:INVALID_SCOPES'],
    ['bad environment', { name: 'n', scopes: ['read'], environment: 'prod' }, 'environment:INVALID_ENVIRONMENT'],
    ['past expiry', { name: 'n', scopes: ['read'], expireTime: past }, 'expire_time:INVALID_EXPIRE_TIME'],
    ['metadata key with $', { name: 'n', scopes: ['read'], metadata: { $where: 'x' } }, 'metadata:INVALID_METADATA'],
    ['metadata key with .', { name: 'n', scopes: ['read'], metadata: { 'a.b': 'x' } }, 'metadata:INVALID_METADATA'],
    ['long metadata value', { name: 'n', scopes: ['read'], metadata: { a: 'x'.repeat(513) } }, 'metadata["a"]:INVALID_METADATA'],
    ['bad workspace', { name: 'n', scopes: ['read'], workspaceId: 'ws one' }, 'workspace_id:INVALID_WORKSPACE_ID'],
    ['bad request id', { name: 'n', scopes: ['read'], requestId: '{"$gt":""}' }, 'request_id:INVALID_REQUEST_ID'],
  ];

  it.each(cases)('rejects %s with its reason and field', async (_label, req, field) => {
    const { metadata } = await s.admin();
    const f = await failure(s.clients.keys.createKey(req, metadata));
    expect(f.code).toBe(status.INVALID_ARGUMENT);
    expect(f.domain).toBe('apikeys.v1');
    expect(f.reason).toBe(field.split(':')[1]);
    expect(f.fields).toContain(field);
  });

  it('reports every violation of one request at once, and stores nothing', async () => {
    const { orgId, metadata } = await s.admin();
    const f = await failure(s.clients.keys.createKey({ name: '', scopes: [], environment: 'x' }, metadata));
    expect(f.fields).toEqual(['name:NAME_REQUIRED', 'scopes:INVALID_SCOPES', 'environment:INVALID_ENVIRONMENT']);
    expect(await s.collections.keys.countDocuments({ org_id: orgId })).toBe(0);
  });

  it('rejects malformed ids on get and revoke', async () => {
    const { metadata } = await s.admin();
    for (const call of [s.clients.keys.getKey({ id: 'key_123' }, metadata), s.clients.keys.revokeKey({ id: '' }, metadata)]) {
      expect(await failure(call)).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ID', fields: ['id:INVALID_ID'] });
    }
  });
});
