// KeyManager's use cases against in-memory stores that behave like the real ones (unique ids
// and hashes, a slot cap, one claim per version): every transition and every refusal it makes.
import { randomBytes } from 'node:crypto';
import { AuditLog } from '../../../src/domain/audit';
import { DomainError } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import { hashSecret } from '../../../src/domain/keyFormat';
import { KeyManager, type KeyManagerDeps } from '../../../src/domain/keys';
import { documentState } from '../../../src/domain/keyState';
import { SecretBox } from '../../../src/domain/secretBox';
import type { CreateKeyInput, UpdateKeyInput } from '../../../src/domain/validation';
import { InMemoryAuditStore } from '../../support/fakes/auditStore';
import { InMemoryChangeLog } from '../../support/fakes/changeLog';
import { ManualClock } from '../../support/fakes/clock';
import { InMemoryCreateRequestStore } from '../../support/fakes/createRequestStore';
import { InMemoryKeyStore } from '../../support/fakes/keyStore';
import { InMemoryOrganizations, InMemorySlotStore } from '../../support/fakes/slotStore';
import { apiKeyContext, userContext } from './contexts';
import { createInput, updateInput } from './requests';

const START = Date.parse('2025-06-01T12:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const ORG = newId('org');
const admin = userContext(ORG);
const member = userContext(ORG, 'member');

function setup(opts: { orgKeyLimit?: number; secretBox?: SecretBox } = { secretBox: new SecretBox(randomBytes(32)) }) {
  const clock = new ManualClock(START);
  const keys = new InMemoryKeyStore();
  const slots = new InMemorySlotStore();
  const organizations = new InMemoryOrganizations();
  const createRequests = new InMemoryCreateRequestStore();
  const changeLog = new InMemoryChangeLog();
  const auditStore = new InMemoryAuditStore();
  const followUps: string[] = [];
  const changed: string[] = [];
  const deps: KeyManagerDeps = {
    keys,
    slots,
    organizations,
    createRequests,
    audit: new AuditLog(auditStore, clock.now, Buffer.alloc(32, 1), (what) => followUps.push(what)),
    secretBox: opts.secretBox,
    now: clock.now,
    keyPrefix: 'sk',
    orgKeyLimit: opts.orgKeyLimit ?? 10,
    pageTokenKey: Buffer.alloc(32, 2),
    rotation: { maxOverlapSeconds: DAY / 1000, defaultOverlapSeconds: HOUR / 1000 },
    idempotencyWindowSeconds: DAY / 1000,
    changeLog,
    onKeyChanged: (key) => changed.push(key._id),
    onFollowUpFailed: (what) => followUps.push(what),
  };
  const manager = new KeyManager(deps);
  /** A key created by the organization's admin (after a tick, so creation order is strict). */
  const create = async (over: Partial<CreateKeyInput> = {}) => {
    clock.advance(1_000);
    return manager.create(admin, createInput(over));
  };
  return { clock, keys, slots, organizations, createRequests, changeLog, auditStore, followUps, changed, deps, manager, create };
}

/** The reason a call was refused with. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DomainError) return err.reason;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('create', () => {
  it('stores a new active key by its hash only, takes a slot, logs it and audits it', async () => {
    const t = setup();
    const { key, secret } = await t.create({ name: ' billing ', scopes: ['read', 'write'], metadata: { team: 'a' } });
    expect(secret).toMatch(/^sk_live_/);
    expect(key).toMatchObject({
      org_id: ORG,
      name: 'billing',
      scopes: ['read', 'write'],
      environment: 'live',
      status: 'active',
      hash: hashSecret(secret),
    });
    expect(JSON.stringify([...t.keys.keys.values()])).not.toContain(secret);
    expect(t.slots.holders(ORG)).toEqual([key._id]);
    expect(t.changeLog.entries).toEqual([expect.objectContaining({ key_id: key._id, hash: key.hash, etag: key.etag, kind: 'created' })]);
    expect(t.auditStore.events).toEqual([expect.objectContaining({ action: 'key.create', key_id: key._id, outcome: 'OK' })]);
  });

  it('refuses past the plan cap, which an organization’s own limit overrides', async () => {
    const t = setup({ orgKeyLimit: 2 });
    await t.create();
    await t.create();
    const err = await t.create().catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'PLAN_LIMIT_REACHED', metadata: { limit: '2' } });
    expect(t.keys.keys.size).toBe(2);
    expect(t.auditStore.events.map((e) => e.outcome)).toEqual(['OK', 'OK', 'PLAN_LIMIT_REACHED']);
    t.organizations.limits.set(ORG, 3);
    await expect(t.create()).resolves.toBeDefined();
    expect(t.slots.holders(ORG)).toHaveLength(3);
  });

  it('gives the slot back when the key cannot be stored', async () => {
    const t = setup();
    t.keys.faults.failNext('insert');
    await expect(t.create()).rejects.toThrow('insert: connection reset');
    expect(t.slots.holders(ORG)).toEqual([]);
  });

  it('answers a created key even when its change-log entry cannot be written, and reports that', async () => {
    const t = setup();
    t.changeLog.faults.failNext('record');
    const { key } = await t.create();
    expect(t.keys.keys.has(key._id)).toBe(true);
    expect(t.followUps).toEqual(['change log']);
  });

  it('refuses members, API keys without write, and recoverable keys without an encryption key', async () => {
    const t = setup({});
    expect(await refusal(t.manager.create(member, createInput()))).toBe('PERMISSION_DENIED');
    expect(await refusal(t.manager.create(apiKeyContext(ORG, { scopes: ['read'] }), createInput()))).toBe('INSUFFICIENT_SCOPE');
    expect(await refusal(t.manager.create(admin, createInput({ recoverable: true })))).toBe('RECOVERY_DISABLED');
    expect(await refusal(t.manager.create(admin, createInput({ scopes: [] })))).toBe('INVALID_SCOPES');
    expect(t.keys.keys.size).toBe(0);
  });

  it('lets an API key create only keys it dominates, in its own environment by default', async () => {
    const t = setup();
    const expiresAt = new Date(START + DAY);
    const bounded = apiKeyContext(ORG, { environment: 'test', expiresAt, rateLimit: { limit: 10, windowSeconds: 60 }, workspaceId: 'ws1' });
    const within = { environment: '', expireTime: new Date(START + HOUR), rateLimit: { limit: 5, windowSeconds: 60 }, workspaceId: 'ws1' };
    const cases: [string, Partial<CreateKeyInput>][] = [
      ['SCOPE_ESCALATION', { ...within, scopes: ['read', 'admin'] }],
      ['ENVIRONMENT_ESCALATION', { ...within, environment: 'live' }],
      ['EXPIRY_ESCALATION', { ...within, expireTime: undefined }],
      ['EXPIRY_ESCALATION', { ...within, expireTime: new Date(START + 2 * DAY) }],
      ['RATE_LIMIT_ESCALATION', { ...within, rateLimit: undefined }],
      ['RATE_LIMIT_ESCALATION', { ...within, rateLimit: { limit: 5, windowSeconds: 30 } }],
      ['WORKSPACE_ESCALATION', { ...within, workspaceId: 'ws2' }],
    ];
    for (const [reason, over] of cases)
      expect([reason, await refusal(t.manager.create(bounded, createInput(over)))]).toEqual([reason, reason]);
    expect(t.keys.keys.size).toBe(0);
    const { key } = await t.manager.create(bounded, createInput(within));
    expect(key).toMatchObject({ environment: 'test', workspace_id: 'ws1', created_by: bounded.principal.id });
  });
});

describe('create with a request id', () => {
  it('answers a retry by the same caller with the same key and secret, creating one key', async () => {
    const t = setup();
    const first = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    const again = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect(again.key._id).toBe(first.key._id);
    expect(again.secret).toBe(first.secret);
    expect(t.keys.keys.size).toBe(1);
    expect(t.slots.holders(ORG)).toEqual([first.key._id]);
  });

  it('lets concurrent calls with one request id create one key and all get its secret', async () => {
    const t = setup();
    const all = await Promise.all([1, 2, 3].map(() => t.manager.create(admin, createInput({ requestId: 'r1' }))));
    expect(new Set(all.map((r) => r.key._id)).size).toBe(1);
    expect(new Set(all.map((r) => r.secret)).size).toBe(1);
    expect(t.keys.keys.size).toBe(1);
  });

  it('a retry that finds the first call still creating waits no longer than its own caller: stops at its deadline or when it has gone', async () => {
    const t = setup();
    // The first call claims the request id and is held up writing the key.
    let landKey!: () => void;
    const insert = t.keys.insert.bind(t.keys);
    t.keys.insert = (key) => new Promise<void>((resolve) => (landKey = resolve)).then(() => insert(key));
    const first = t.manager.create(admin, createInput({ requestId: 'r1' }));
    await new Promise((r) => setImmediate(r));
    const finds = jest.spyOn(t.createRequests, 'find');

    const pastDeadline = { ...admin, deadline: Date.now() - 1 };
    expect(await refusal(t.manager.create(pastDeadline, createInput({ requestId: 'r1' })))).toBe('STORAGE_UNAVAILABLE');
    expect(finds).not.toHaveBeenCalled(); // no attempt at all: its caller stopped waiting already

    const gone = new AbortController();
    gone.abort(new DOMException('the client cancelled the call', 'AbortError'));
    await expect(t.manager.create({ ...admin, signal: gone.signal }, createInput({ requestId: 'r1' }))).rejects.toBe(gone.signal.reason);
    expect(finds).toHaveBeenCalledTimes(1); // looked once, found it in progress, and stopped

    landKey();
    expect((await first).key._id).toBe([...t.keys.keys.keys()][0]);
  });

  it('answers a replay without the secret when it could not be kept sealed', async () => {
    const t = setup({});
    const first = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    const again = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect([again.key._id, again.secret]).toEqual([first.key._id, '']);
  });

  it('refuses the id for other parameters or another caller (REQUEST_ID_REUSED)', async () => {
    const t = setup();
    await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect(await refusal(t.manager.create(admin, createInput({ requestId: 'r1', name: 'other' })))).toBe('REQUEST_ID_REUSED');
    expect(await refusal(t.manager.create(userContext(ORG, 'admin', newId('usr')), createInput({ requestId: 'r1' })))).toBe(
      'REQUEST_ID_REUSED',
    );
    expect(t.keys.keys.size).toBe(1);
  });

  it('reveals a replayed key only to a caller that still dominates it', async () => {
    const t = setup();
    const caller = apiKeyContext(ORG);
    const { key } = await t.manager.create(caller, createInput({ requestId: 'r1' }));
    await t.manager.update(admin, key._id, updateInput({ scopes: ['read', 'admin'] }), ['scopes'], '');
    expect(await refusal(t.manager.create(caller, createInput({ requestId: 'r1' })))).toBe('SCOPE_ESCALATION');
  });

  it('gives the id back when the create fails, so a retry creates the key', async () => {
    const t = setup();
    t.keys.faults.failNext('insert');
    await expect(t.manager.create(admin, createInput({ requestId: 'r1' }))).rejects.toThrow();
    expect(t.createRequests.claims.size).toBe(0);
    const { key } = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect(t.keys.keys.has(key._id)).toBe(true);
  });

  it('creates a new key once the idempotency window has passed', async () => {
    const t = setup();
    const first = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    t.clock.advance(DAY);
    const later = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect(later.key._id).not.toBe(first.key._id);
    expect(t.keys.keys.size).toBe(2);
  });
});

/** ListKeys without workspace, creator, environment or scope filters. */
const NO_FILTERS = { workspaceId: '', createdBy: '', environment: '', scope: '' };

describe('get and list', () => {
  it('gets a key of the caller’s organization only, with its last use', async () => {
    const t = setup();
    const { key } = await t.create();
    t.keys.markUsed(key._id, new Date(START));
    expect(await t.manager.get(member, key._id)).toMatchObject({ _id: key._id, last_used_at: new Date(START) });
    expect(await refusal(t.manager.get(userContext(newId('org')), key._id))).toBe('KEY_NOT_FOUND');
    expect(await refusal(t.manager.get(admin, 'key_nope'))).toBe('INVALID_ID');
  });

  it('pages newest first, ended keys only when asked for, tokens bound to their filters', async () => {
    const t = setup();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.create()).key._id);
    await t.manager.revoke(admin, ids[0], '');
    await t.manager.archive(admin, ids[1]);
    const live = await t.manager.list(member, { ...NO_FILTERS, pageSize: 1, pageToken: '', includeRevoked: false, includeArchived: false });
    expect([live.keys.map((k) => k._id), live.nextPageToken]).toEqual([[ids[2]], '']);
    const page = (pageToken: string) =>
      t.manager.list(member, { ...NO_FILTERS, pageSize: 2, pageToken, includeRevoked: true, includeArchived: true });
    const first = await page('');
    const second = await page(first.nextPageToken);
    expect([...first.keys, ...second.keys].map((k) => k._id)).toEqual([...ids].reverse());
    expect(second.nextPageToken).toBe('');
    const otherFilters = t.manager.list(member, {
      ...NO_FILTERS,
      pageSize: 2,
      pageToken: first.nextPageToken,
      includeRevoked: false,
      includeArchived: true,
    });
    expect(await refusal(otherFilters)).toBe('INVALID_PAGE_TOKEN');
  });

  it('lists keys unused since a time, never-used ones included, a bounded number of pages per call', async () => {
    const t = setup();
    const since = new Date(START);
    const neverUsed = (await t.create()).key._id;
    const usedLongAgo = (await t.create()).key._id;
    t.keys.markUsed(usedLongAgo, new Date(START - DAY));
    const used: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { key } = await t.create();
      t.keys.markUsed(key._id, since);
      used.push(key._id);
    }
    const list = (pageToken: string) =>
      t.manager.list(member, { ...NO_FILTERS, pageSize: 1, pageToken, includeRevoked: false, includeArchived: false, unusedSince: since });
    // Five pages of one used key each: nothing found yet, and a token to go on from there.
    const first = await list('');
    expect(first.keys).toEqual([]);
    const second = await list(first.nextPageToken);
    expect(second.keys.map((k) => k._id)).toEqual([usedLongAgo]);
    const third = await list(second.nextPageToken);
    expect(third.keys.map((k) => k._id)).toEqual([neverUsed]);
    expect((await list(third.nextPageToken)).nextPageToken).toBe('');
  });
});

describe('update', () => {
  it('changes the masked fields, with a new etag, logged before it lands', async () => {
    const t = setup();
    const { key } = await t.create({ metadata: { team: 'a' } });
    t.clock.advance(1_000);
    const after = await t.manager.update(admin, key._id, updateInput({ name: 'renamed', metadata: { team: 'b' } }), ['name'], key.etag);
    expect(after).toMatchObject({ name: 'renamed', metadata: { team: 'a' }, updated_at: new Date(START + 2_000) });
    expect(after.etag).not.toBe(key.etag);
    expect(t.changeLog.entries.at(-1)).toMatchObject({ key_id: key._id, kind: 'changed', etag: after.etag });
    expect(t.changed).toEqual([key._id]);
    expect(t.auditStore.events.at(-1)).toMatchObject({ action: 'key.update', key_id: key._id, outcome: 'OK' });
  });

  it('changes nothing when its change-log entry cannot be written', async () => {
    const t = setup();
    const { key } = await t.create();
    t.changeLog.faults.failNext('record');
    await expect(t.manager.update(admin, key._id, updateInput({ name: 'renamed' }), ['name'], '')).rejects.toThrow('record');
    expect(t.keys.keys.get(key._id)).toMatchObject({ name: 'ci deploy key', etag: key.etag });
  });

  it('refuses a stale etag, a version another change claimed, an empty mask and ended keys', async () => {
    const t = setup();
    const { key } = await t.create();
    const rename = (etag: string) => t.manager.update(admin, key._id, updateInput({ name: 'x' }), ['name'], etag);
    expect(await refusal(rename('stale'))).toBe('ETAG_MISMATCH');
    await t.keys.claimVersion(key._id, key.etag, new Date(START));
    expect(await refusal(rename(key.etag))).toBe('ETAG_MISMATCH');
    expect(await refusal(rename(''))).toBe('ETAG_MISMATCH');
    expect(await refusal(t.manager.update(admin, key._id, updateInput(), [], ''))).toBe('INVALID_UPDATE_MASK');
    const { key: revoked } = await t.create();
    await t.manager.revoke(admin, revoked._id, '');
    expect(await refusal(t.manager.update(admin, revoked._id, updateInput({ name: 'x' }), ['name'], ''))).toBe('KEY_REVOKED');
  });

  it('updates archived keys', async () => {
    const t = setup();
    const { key } = await t.create();
    await t.manager.archive(admin, key._id);
    await expect(t.manager.update(admin, key._id, updateInput({ name: 'x' }), ['name'], '')).resolves.toMatchObject({
      name: 'x',
      status: 'archived',
    });
  });

  it('lets an API key change only keys it dominates, as they are and as they would become', async () => {
    const t = setup();
    const caller = apiKeyContext(ORG);
    const { key: wide } = await t.create({ scopes: ['read', 'admin'] });
    expect(await refusal(t.manager.update(caller, wide._id, updateInput({ name: 'x' }), ['name'], ''))).toBe('SCOPE_ESCALATION');
    const { key } = await t.create();
    expect(await refusal(t.manager.update(caller, key._id, updateInput({ scopes: ['admin'] }), ['scopes'], ''))).toBe('SCOPE_ESCALATION');
    await expect(t.manager.update(caller, key._id, updateInput({ scopes: ['write'] }), ['scopes'], '')).resolves.toMatchObject({
      scopes: ['write'],
    });
  });

  it('lets a retiring key be renamed or narrowed, never widened or kept longer', async () => {
    const t = setup();
    const { key } = await t.create({ scopes: ['read', 'write'] });
    await t.manager.rotate(admin, key._id, { seconds: 600, nanos: 0 });
    const update = (c: Partial<UpdateKeyInput>, mask: string[]) => t.manager.update(admin, key._id, updateInput(c), mask, '');
    await expect(update({ name: 'old' }, ['name'])).resolves.toMatchObject({ name: 'old' });
    await expect(update({ scopes: ['read'] }, ['scopes'])).resolves.toMatchObject({ scopes: ['read'] });
    await expect(update({ expireTime: new Date(START + 2 * MINUTE) }, ['expire_time'])).resolves.toMatchObject({
      expires_at: new Date(START + 2 * MINUTE),
    });
    expect(await refusal(update({ scopes: ['read', 'write'] }, ['scopes']))).toBe('KEY_RETIRING');
    expect(await refusal(update({ expireTime: new Date(START + HOUR) }, ['expire_time']))).toBe('KEY_RETIRING');
    expect(await refusal(update({}, ['expire_time']))).toBe('KEY_RETIRING');
  });
});

describe('rotate', () => {
  it('issues a successor that takes the slot; the old key works until the overlap ends', async () => {
    const t = setup({ orgKeyLimit: 1, secretBox: undefined });
    const { key } = await t.create({ scopes: ['read', 'write'], metadata: { team: 'a' } });
    const { key: successor, secret, previous } = await t.manager.rotate(admin, key._id, { seconds: 600, nanos: 0 });
    const at = new Date(START + 1_000);
    expect(successor).toMatchObject({
      name: key.name,
      scopes: key.scopes,
      metadata: key.metadata,
      environment: 'live',
      rotated_from: key._id,
      hash: hashSecret(secret),
      status: 'active',
    });
    expect(previous).toMatchObject({ status: 'active', replaced_by: successor._id, expires_at: new Date(at.getTime() + 600_000) });
    expect(t.slots.holders(ORG)).toEqual([successor._id]);
    expect(t.changeLog.entries.map((e) => [e.key_id, e.kind])).toEqual([
      [key._id, 'created'],
      [key._id, 'changed'],
      [successor._id, 'created'],
    ]);
    t.clock.advance(600_000);
    expect(documentState(await t.manager.get(admin, key._id), t.clock.now())).toBe('EXPIRED');
  });

  it('keeps an earlier expiry, and uses the default overlap when none is given', async () => {
    const t = setup();
    const soon = new Date(START + 10 * MINUTE);
    const { key: expiring } = await t.create({ expireTime: soon });
    expect((await t.manager.rotate(admin, expiring._id, { seconds: 3_600, nanos: 0 })).previous.expires_at).toEqual(soon);
    const { key } = await t.create();
    expect((await t.manager.rotate(admin, key._id, undefined)).previous.expires_at).toEqual(new Date(t.clock.now().getTime() + HOUR));
  });

  it('with zero overlap revokes the old key at once and drops its sealed secret', async () => {
    const t = setup();
    const { key } = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    expect((await t.createRequests.find(ORG, 'r1'))!.secret_box).not.toBeNull();
    const { previous } = await t.manager.rotate(admin, key._id, { seconds: 0, nanos: 0 });
    expect(previous).toMatchObject({ status: 'revoked', revoked_by: admin.principal.id, revoked_comment: 'rotated' });
    expect((await t.createRequests.find(ORG, 'r1'))!.secret_box).toBeNull();
  });

  it('refuses a second rotation (KEY_ROTATED, naming the successor), ended keys and too long an overlap', async () => {
    const t = setup();
    const { key } = await t.create();
    const { key: successor } = await t.manager.rotate(admin, key._id, { seconds: 60, nanos: 0 });
    const again = await t.manager.rotate(admin, key._id, { seconds: 60, nanos: 0 }).catch((e: unknown) => e);
    expect(again).toMatchObject({ reason: 'KEY_ROTATED', metadata: { replaced_by: successor._id } });
    await expect(t.manager.rotate(admin, successor._id, { seconds: 60, nanos: 0 })).resolves.toBeDefined();
    const { key: archived } = await t.create();
    await t.manager.archive(admin, archived._id);
    expect(await refusal(t.manager.rotate(admin, archived._id, undefined))).toBe('KEY_ARCHIVED');
    const { key: expired } = await t.create({ expireTime: new Date(t.clock.now().getTime() + MINUTE) });
    t.clock.advance(MINUTE);
    expect(await refusal(t.manager.rotate(admin, expired._id, undefined))).toBe('KEY_NOT_ACTIVE');
    expect(await refusal(t.manager.rotate(admin, expired._id, { seconds: DAY / 1000 + 1, nanos: 0 }))).toBe('INVALID_OVERLAP');
  });

  it('lets an API key rotate only keys it dominates, and stores no successor when refused', async () => {
    const t = setup();
    const { key } = await t.create({ scopes: ['read', 'admin'] });
    expect(await refusal(t.manager.rotate(apiKeyContext(ORG), key._id, undefined))).toBe('SCOPE_ESCALATION');
    expect(t.keys.keys.size).toBe(1);
  });

  it('removes the successor when the old key cannot be retired', async () => {
    const t = setup();
    const { key } = await t.create();
    t.keys.faults.failNext('applyChange');
    await expect(t.manager.rotate(admin, key._id, undefined)).rejects.toThrow('applyChange');
    expect([...t.keys.keys.keys()]).toEqual([key._id]);
    expect(t.slots.holders(ORG)).toEqual([key._id]);
  });

  it('answers a rotation that happened when its slot transfer fails, and reports it', async () => {
    const t = setup();
    const { key } = await t.create();
    t.slots.faults.failNext('transfer');
    await expect(t.manager.rotate(admin, key._id, undefined)).resolves.toBeDefined();
    expect(t.followUps).toEqual(['slot transfer']);
  });
});

describe('revoke', () => {
  it('ends the key: revoked by the caller with the comment, slot freed, sealed secret dropped', async () => {
    const t = setup();
    const { key } = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    t.clock.advance(1_000);
    const revoked = await t.manager.revoke(admin, key._id, '  leaked  ');
    expect(revoked).toMatchObject({
      status: 'revoked',
      revoked_at: new Date(START + 1_000),
      revoked_by: admin.principal.id,
      revoked_comment: 'leaked',
    });
    expect(t.slots.holders(ORG)).toEqual([]);
    expect((await t.createRequests.find(ORG, 'r1'))!.secret_box).toBeNull();
    expect(t.changed).toEqual([key._id]);
    expect(await refusal(t.manager.revoke(admin, key._id, ''))).toBe('KEY_REVOKED');
  });

  it('revokes archived and expired keys', async () => {
    const t = setup();
    const { key: archived } = await t.create();
    await t.manager.archive(admin, archived._id);
    await expect(t.manager.revoke(admin, archived._id, '')).resolves.toMatchObject({ status: 'revoked' });
    const { key: expired } = await t.create({ expireTime: new Date(t.clock.now().getTime() + MINUTE) });
    t.clock.advance(MINUTE);
    await expect(t.manager.revoke(admin, expired._id, '')).resolves.toMatchObject({ status: 'revoked' });
  });

  it('lets a key with allow_self_revoke revoke itself without write, and nothing else', async () => {
    const t = setup();
    const { key: self } = await t.create({ allowSelfRevoke: true, scopes: ['read', 'admin'] });
    const { key: other } = await t.create();
    const caller = apiKeyContext(ORG, { id: self._id, scopes: ['read'], allowSelfRevoke: true });
    expect(await refusal(t.manager.revoke(caller, other._id, ''))).toBe('INSUFFICIENT_SCOPE');
    await expect(t.manager.revoke(caller, self._id, '')).resolves.toMatchObject({ status: 'revoked', revoked_by: self._id });
    const { key: noSelf } = await t.create({ scopes: ['read'] });
    expect(await refusal(t.manager.revoke(apiKeyContext(ORG, { id: noSelf._id, scopes: ['read'] }), noSelf._id, ''))).toBe(
      'INSUFFICIENT_SCOPE',
    );
  });

  it('refuses an API key revoking a key it does not dominate', async () => {
    const t = setup();
    const { key } = await t.create({ environment: 'test' });
    expect(await refusal(t.manager.revoke(apiKeyContext(ORG), key._id, ''))).toBe('ENVIRONMENT_ESCALATION');
  });

  it('answers a revocation that happened when its slot release fails, and reports it', async () => {
    const t = setup();
    const { key } = await t.create();
    t.slots.faults.failNext('release');
    await expect(t.manager.revoke(admin, key._id, '')).resolves.toMatchObject({ status: 'revoked' });
    expect(t.followUps).toEqual(['slot release']);
  });
});

describe('archive and reactivate', () => {
  it('archives active and expired keys, freeing their slots; not archived or revoked ones', async () => {
    const t = setup();
    const { key } = await t.create();
    t.clock.advance(1_000);
    await expect(t.manager.archive(admin, key._id)).resolves.toMatchObject({ status: 'archived', archived_at: new Date(START + 2_000) });
    expect(t.slots.holders(ORG)).toEqual([]);
    expect(await refusal(t.manager.archive(admin, key._id))).toBe('KEY_ARCHIVED');
    const { key: expired } = await t.create({ expireTime: new Date(t.clock.now().getTime() + MINUTE) });
    t.clock.advance(MINUTE);
    await expect(t.manager.archive(admin, expired._id)).resolves.toMatchObject({ status: 'archived' });
    const { key: revoked } = await t.create();
    await t.manager.revoke(admin, revoked._id, '');
    expect(await refusal(t.manager.archive(admin, revoked._id))).toBe('KEY_REVOKED');
  });

  it('reactivates an archived key into a slot of its own', async () => {
    const t = setup();
    const { key } = await t.create();
    await t.manager.archive(admin, key._id);
    await expect(t.manager.reactivate(admin, key._id)).resolves.toMatchObject({ status: 'active', archived_at: null });
    expect(t.slots.holders(ORG)).toEqual([key._id]);
  });

  it('brings back an archived key whose time has passed as expired', async () => {
    const t = setup();
    const { key } = await t.create({ expireTime: new Date(t.clock.now().getTime() + MINUTE) });
    await t.manager.archive(admin, key._id);
    t.clock.advance(MINUTE);
    const back = await t.manager.reactivate(admin, key._id);
    expect([back.status, documentState(back, t.clock.now())]).toEqual(['active', 'EXPIRED']);
  });

  it('refuses at the plan cap and leaves the key archived', async () => {
    const t = setup({ orgKeyLimit: 1 });
    const { key } = await t.create();
    await t.manager.archive(admin, key._id);
    const { key: other } = await t.create();
    expect(await refusal(t.manager.reactivate(admin, key._id))).toBe('PLAN_LIMIT_REACHED');
    expect(t.keys.keys.get(key._id)!.status).toBe('archived');
    expect(t.slots.holders(ORG)).toEqual([other._id]);
  });

  it('refuses keys that are not archived: active (KEY_NOT_ARCHIVED), expired (KEY_NOT_ACTIVE), revoked, rotated away', async () => {
    const t = setup();
    const { key: active } = await t.create();
    expect(await refusal(t.manager.reactivate(admin, active._id))).toBe('KEY_NOT_ARCHIVED');
    const { key: expired } = await t.create({ expireTime: new Date(t.clock.now().getTime() + MINUTE) });
    t.clock.advance(MINUTE);
    expect(await refusal(t.manager.reactivate(admin, expired._id))).toBe('KEY_NOT_ACTIVE');
    const { key: revoked } = await t.create();
    await t.manager.revoke(admin, revoked._id, '');
    expect(await refusal(t.manager.reactivate(admin, revoked._id))).toBe('KEY_REVOKED');
    const { key: rotated } = await t.create();
    await t.manager.rotate(admin, rotated._id, undefined);
    await t.manager.archive(admin, rotated._id);
    const before = t.slots.holders(ORG);
    expect(await refusal(t.manager.reactivate(admin, rotated._id))).toBe('KEY_RETIRING');
    expect(t.slots.holders(ORG)).toEqual(before);
  });

  it('gives the slot back when the reactivation cannot be written', async () => {
    const t = setup();
    const { key } = await t.create();
    await t.manager.archive(admin, key._id);
    t.keys.faults.failNext('applyChange');
    await expect(t.manager.reactivate(admin, key._id)).rejects.toThrow('applyChange');
    expect(t.slots.holders(ORG)).toEqual([]);
  });
});

describe('delete', () => {
  it('logs a tombstone before removing the key, then frees its slot and sealed secret', async () => {
    const t = setup();
    const { key } = await t.manager.create(admin, createInput({ requestId: 'r1' }));
    const presentWhenLogged: boolean[] = [];
    const record = t.changeLog.record.bind(t.changeLog);
    t.changeLog.record = async (entry) => {
      presentWhenLogged.push(t.keys.keys.has(entry.key_id));
      return record(entry);
    };
    await t.manager.delete(admin, key._id);
    expect(t.changeLog.entries.at(-1)).toMatchObject({ key_id: key._id, hash: key.hash, etag: '', kind: 'deleted' });
    expect(presentWhenLogged).toEqual([true]);
    expect(t.keys.keys.has(key._id)).toBe(false);
    expect(t.slots.holders(ORG)).toEqual([]);
    expect((await t.createRequests.find(ORG, 'r1'))!.secret_box).toBeNull();
    expect(t.changed).toEqual([key._id]);
    expect(await refusal(t.manager.delete(admin, key._id))).toBe('KEY_NOT_FOUND');
  });

  it('keeps the key when its tombstone cannot be logged', async () => {
    const t = setup();
    const { key } = await t.create();
    t.changeLog.faults.failNext('record');
    await expect(t.manager.delete(admin, key._id)).rejects.toThrow('record');
    expect(t.keys.keys.has(key._id)).toBe(true);
  });

  it('deletes keys in any state, only ones an API key dominates', async () => {
    const t = setup();
    const { key: revoked } = await t.create();
    await t.manager.revoke(admin, revoked._id, '');
    await expect(t.manager.delete(admin, revoked._id)).resolves.toBeUndefined();
    const { key: wide } = await t.create({ scopes: ['admin'] });
    expect(await refusal(t.manager.delete(apiKeyContext(ORG), wide._id))).toBe('SCOPE_ESCALATION');
    expect(await refusal(t.manager.delete(member, wide._id))).toBe('PERMISSION_DENIED');
    expect(t.keys.keys.has(wide._id)).toBe(true);
  });
});

describe('getSecret', () => {
  it('opens a recoverable key’s sealed secret, each read audited', async () => {
    const t = setup();
    const { key, secret } = await t.create({ recoverable: true });
    expect(t.keys.keys.get(key._id)!.secret_box).not.toBeNull();
    expect(await t.manager.getSecret(admin, key._id)).toBe(secret);
    expect(t.auditStore.events.filter((e) => e.action === 'key.secret.read')).toHaveLength(1);
  });

  it('refuses keys not created recoverable, members, keys the caller does not dominate, and no encryption key', async () => {
    const t = setup();
    const { key: plain } = await t.create();
    expect(await refusal(t.manager.getSecret(admin, plain._id))).toBe('KEY_NOT_RECOVERABLE');
    const { key } = await t.create({ recoverable: true, scopes: ['admin'] });
    expect(await refusal(t.manager.getSecret(member, key._id))).toBe('PERMISSION_DENIED');
    expect(await refusal(t.manager.getSecret(apiKeyContext(ORG), key._id))).toBe('SCOPE_ESCALATION');
    const withoutBox = new KeyManager({ ...t.deps, secretBox: undefined });
    expect(await refusal(withoutBox.getSecret(admin, key._id))).toBe('RECOVERY_DISABLED');
  });
});
