// LeakResponse against in-memory stand-ins: what reaches storage (nothing, for a secret that is not
// shaped like a key), how each reported secret is answered, and who is refused before any read.
import { AuditLog } from '../../../src/domain/audit';
import { DomainError } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import { generateSecret, hashSecret, parseSecret } from '../../../src/domain/keyFormat';
import { LeakResponse, type LeakReportInput } from '../../../src/domain/leakResponse';
import type { StoredKey } from '../../../src/domain/model';
import type { CallContext } from '../../../src/domain/principal';
import { InMemoryAuditStore } from '../../support/fakes/auditStore';
import { ManualClock } from '../../support/fakes/clock';
import { fakeKey } from './fakeKey';
import { apiKeyContext, contextOf, userContext } from './contexts';

const ORG = newId('org');
const service = contextOf({ kind: 'service', id: 'service:1' }, '');

function setup() {
  const clock = new ManualClock(Date.parse('2025-06-01T12:00:00.000Z'));
  const keys = new Map<string, StoredKey>();
  const reads: string[][] = [];
  const revokes: string[] = [];
  /** What the next revoke throws instead of revoking (a change made meanwhile). */
  let revokeFails: DomainError | undefined;
  const audit = new InMemoryAuditStore();
  const leaks = new LeakResponse({
    keys: {
      findByHashes: async (hashes) => {
        reads.push([...hashes]);
        return hashes.flatMap((h) => (keys.has(h) ? [keys.get(h)!] : []));
      },
    },
    lookupHash: (secret) => (parseSecret(secret, 'sk') ? hashSecret(secret) : null),
    revoker: {
      revokeLeaked: async (ctx, id, revokedBy, comment) => {
        if (revokeFails) throw revokeFails;
        revokes.push(`${ctx.orgId} ${id} ${revokedBy} ${comment}`);
        const key = [...keys.values()].find((k) => k._id === id)!;
        return { ...key, status: 'revoked', revoked_by: revokedBy, revoked_comment: comment };
      },
    },
    audit: new AuditLog(audit, clock.now, Buffer.alloc(32, 1), () => {}),
    now: clock.now,
  });
  const addKey = (over: Partial<StoredKey> = {}) => {
    const secret = generateSecret('sk', 'live');
    const key = fakeKey({ _id: newId('key'), org_id: ORG, hash: hashSecret(secret), ...over });
    keys.set(key.hash, key);
    return { key, secret };
  };
  const failRevokesWith = (err: DomainError) => (revokeFails = err);
  return { leaks, reads, revokes, audit, addKey, failRevokesWith };
}

const report = (secrets: string[], reporter = 'scanner'): LeakReportInput => ({
  reporter,
  secrets: secrets.map((secret) => ({ secret, location: '' })),
});

describe('LeakResponse.lookup', () => {
  it.each(['garbage', 'sk_live_short', generateSecret('sk', 'live').slice(0, -1) + '!', generateSecret('pk', 'live')])(
    'answers %j NOT_FOUND without reading storage',
    async (secret) => {
      const { leaks, reads } = setup();
      await expect(leaks.lookup(service, secret)).rejects.toMatchObject({ reason: 'KEY_NOT_FOUND' });
      expect(reads).toEqual([]);
    },
  );

  it('finds the key, and records the lookup in its organization', async () => {
    const { leaks, reads, addKey, audit } = setup();
    const { key, secret } = addKey();
    await expect(leaks.lookup(service, secret)).resolves.toBe(key);
    expect(reads).toEqual([[key.hash]]);
    expect(audit.events).toMatchObject([{ org_id: ORG, action: 'key.lookup', key_id: key._id, actor: 'service:1', acting_as: null }]);
  });

  it.each<[string, CallContext]>([
    ['an admin', userContext(ORG)],
    ['an API key', apiKeyContext(ORG)],
  ])('refuses %s before any read', async (_who, ctx) => {
    const { leaks, reads, addKey } = setup();
    await expect(leaks.lookup(ctx, addKey().secret)).rejects.toMatchObject({ reason: 'PERMISSION_DENIED' });
    expect(reads).toEqual([]);
  });
});

describe('LeakResponse.report', () => {
  it('reads storage once, for the secrets shaped like keys only, and none when there are none', async () => {
    const { leaks, reads, addKey } = setup();
    const res = await leaks.report(service, report(['nope', 'sk_live_nope']));
    expect(res.results).toEqual([{ outcome: 'UNKNOWN' }, { outcome: 'UNKNOWN' }]);
    expect(reads).toEqual([]);

    const { key, secret } = addKey();
    const unknown = generateSecret('sk', 'test');
    await leaks.report(service, report([secret, 'nope', unknown, secret]));
    expect(reads).toEqual([[key.hash, hashSecret(unknown)]]);
  });

  it('revokes a key reported twice once: the repeat is ALREADY_ENDED, and both are recorded', async () => {
    const { leaks, revokes, addKey, audit } = setup();
    const { key, secret } = addKey();
    const res = await leaks.report(service, {
      reporter: 'scanner',
      secrets: [
        { secret, location: 'https://a.example' },
        { secret, location: 'https://b.example' },
      ],
    });
    const found = { id: key._id, orgId: ORG };
    expect(res.results).toEqual([
      { outcome: 'REVOKED', key: found },
      { outcome: 'ALREADY_ENDED', key: found },
    ]);
    expect(revokes).toEqual([`${ORG} ${key._id} leak_report:${res.reportId} leak reported by scanner at https://a.example`]);
    expect(audit.events.map((e) => e.details)).toEqual([
      { report_id: res.reportId, reporter: 'scanner', location: 'https://a.example', outcome: 'REVOKED' },
      { report_id: res.reportId, reporter: 'scanner', location: 'https://b.example', outcome: 'ALREADY_ENDED' },
    ]);
  });

  it('answers a key revoked meanwhile ALREADY_ENDED, one deleted meanwhile UNKNOWN, and lets other failures through', async () => {
    const revokedMeanwhile = setup();
    const a = revokedMeanwhile.addKey();
    revokedMeanwhile.failRevokesWith(new DomainError('KEY_REVOKED', 'revoked'));
    expect((await revokedMeanwhile.leaks.report(service, report([a.secret]))).results[0].outcome).toBe('ALREADY_ENDED');

    const deletedMeanwhile = setup();
    const b = deletedMeanwhile.addKey();
    deletedMeanwhile.failRevokesWith(new DomainError('KEY_NOT_FOUND', 'gone'));
    expect((await deletedMeanwhile.leaks.report(service, report([b.secret]))).results).toEqual([{ outcome: 'UNKNOWN' }]);
    expect(deletedMeanwhile.audit.events).toEqual([]);

    const storageDown = setup();
    const c = storageDown.addKey();
    storageDown.failRevokesWith(new DomainError('STORAGE_UNAVAILABLE', 'down'));
    await expect(storageDown.leaks.report(service, report([c.secret]))).rejects.toMatchObject({ reason: 'STORAGE_UNAVAILABLE' });
  });

  it('staff acting as an organization find only its keys', async () => {
    const { leaks, addKey, revokes } = setup();
    const { secret } = addKey();
    const staff = contextOf(
      { kind: 'user', id: newId('usr'), emailVerified: true, orgId: newId('org'), role: 'admin', staff: true },
      newId('org'),
      {
        actingAs: true,
      },
    );
    expect((await leaks.report(staff, report([secret]))).results).toEqual([{ outcome: 'UNKNOWN' }]);
    expect(revokes).toEqual([]);
  });

  it('refuses a staff member (reports revoke) before any read', async () => {
    const { leaks, reads, addKey } = setup();
    const member = contextOf({ kind: 'user', id: newId('usr'), emailVerified: true, orgId: ORG, role: 'member', staff: true }, ORG);
    await expect(leaks.report(member, report([addKey().secret]))).rejects.toMatchObject({ reason: 'PERMISSION_DENIED' });
    expect(reads).toEqual([]);
  });
});
