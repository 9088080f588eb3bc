import { AuditLog, type ListAuditInput } from '../../../src/domain/audit';
import { DomainError } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import { InMemoryAuditStore } from '../../support/fakes/auditStore';
import { ManualClock } from '../../support/fakes/clock';
import { contextOf, userContext } from './contexts';

const ORG = newId('org');
const KEY = newId('key');
const ctx = userContext(ORG);

function setup() {
  const store = new InMemoryAuditStore();
  const clock = new ManualClock(Date.parse('2025-06-01T12:00:00.000Z'));
  const reported: string[] = [];
  const log = new AuditLog(store, clock.now, Buffer.alloc(32, 7), (what) => reported.push(what));
  return { store, clock, reported, log };
}

describe('AuditLog.around', () => {
  it('records one event for a change, with the caller, the key and the outcome', async () => {
    const { store, log, reported } = setup();
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => 'done')).resolves.toBe('done');
    expect(store.events).toEqual([
      {
        _id: expect.stringMatching(/^evt_/),
        org_id: ORG,
        actor: ctx.principal.id,
        acting_as: null,
        action: 'key.revoke',
        key_id: KEY,
        time: new Date('2025-06-01T12:00:00.000Z'),
        request_id: 'req-1',
        outcome: 'OK',
        method: ctx.method,
      },
    ]);
    expect(reported).toEqual([]);
  });

  it('retries a failed write with the same event id, and reports nothing once it lands', async () => {
    const { store, log, reported } = setup();
    store.failNext(2);
    await log.around(ctx, 'key.revoke', KEY, true, async () => 'done');
    expect(store.attempts).toHaveLength(3);
    expect(new Set(store.attempts.map((e) => e._id)).size).toBe(1);
    expect(store.events).toHaveLength(1);
    expect(reported).toEqual([]);
  });

  it('never doubles, nor reports as failed, an event whose write landed but whose answer was lost', async () => {
    const { store, log, reported } = setup();
    store.failNext(1, { landing: true });
    await log.around(ctx, 'key.revoke', KEY, true, async () => 'done');
    expect(store.attempts).toHaveLength(2);
    expect(store.events).toHaveLength(1);
    expect(reported).toEqual([]);
  });

  it('answers a change that happened as success when its event cannot be written, and reports it once', async () => {
    const { store, log, reported } = setup();
    store.failNext(Infinity);
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => 'done')).resolves.toBe('done');
    expect(store.attempts).toHaveLength(3);
    expect(new Set(store.attempts.map((e) => e._id)).size).toBe(1);
    expect(reported).toEqual(['audit event key.revoke']);
  });

  it('keeps a failure its own error, even when its event cannot be written', async () => {
    const { store, log, reported } = setup();
    store.failNext(Infinity);
    const refused = new DomainError('KEY_REVOKED', 'already revoked');
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => Promise.reject(refused))).rejects.toBe(refused);
    expect(reported).toEqual(['audit event key.revoke']);
  });

  it('records a refusal with its reason, and any other failure as INTERNAL', async () => {
    const { store, log } = setup();
    await expect(log.around(ctx, 'key.revoke', KEY, true, () => Promise.reject(new DomainError('SCOPE_ESCALATION', 'no')))).rejects.toThrow(
      'no',
    );
    await expect(log.around(ctx, 'key.archive', KEY, true, () => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    expect(store.events.map((e) => `${e.action}:${e.outcome}`)).toEqual(['key.revoke:SCOPE_ESCALATION', 'key.archive:INTERNAL']);
  });

  it('records reads only when staff act on another organization, with the staff email', async () => {
    const { store, log } = setup();
    const staff = contextOf(
      { kind: 'user', id: newId('usr'), email: 'ops@staff.example', emailVerified: true, orgId: newId('org'), role: 'admin', staff: true },
      ORG,
      {
        actingAs: true,
      },
    );
    await log.around(ctx, 'key.get', KEY, false, async () => 1);
    await log.around(staff, 'key.get', KEY, false, async () => 1);
    expect(store.events).toEqual([
      expect.objectContaining({ action: 'key.get', org_id: ORG, actor: staff.principal.id, acting_as: 'ops@staff.example' }),
    ]);
  });

  it('takes a create’s key id from its result, and keeps only well-formed key ids', async () => {
    const { store, log } = setup();
    await log.around(
      ctx,
      'key.create',
      (r: { id: string }) => r.id,
      true,
      async () => ({ id: KEY }),
    );
    await expect(
      log.around(ctx, 'key.get', 'key_<script>', true, () => Promise.reject(new DomainError('INVALID_ID', 'bad'))),
    ).rejects.toThrow();
    expect(store.events.map((e) => [e.action, e.key_id])).toEqual([
      ['key.create', KEY],
      ['key.get', null],
    ]);
  });

  it('adds details drawn from a success, none to a failure, and no details field when there are none', async () => {
    const { store, log } = setup();
    const details = (r: { limit: number }) => ({ key_limit: String(r.limit) });
    await log.around(ctx, 'organization.key_limit.set', null, true, async () => ({ limit: 5 }), details);
    await expect(
      log.around(ctx, 'organization.key_limit.set', null, true, () => Promise.reject(new DomainError('INVALID_ARGUMENT', 'bad')), details),
    ).rejects.toThrow();
    await log.around(ctx, 'key.revoke', KEY, true, async () => 'done');
    expect(store.events.map((e) => [e.outcome, e.details])).toEqual([
      ['OK', { key_limit: '5' }],
      ['INVALID_ARGUMENT', undefined],
      ['OK', undefined],
    ]);
    expect('details' in store.events[2]).toBe(false);
  });
});

describe('AuditLog.note', () => {
  it('records something already done in the organization of the context it is given', async () => {
    const { store, log } = setup();
    const elsewhere = newId('org');
    await log.note({ ...ctx, orgId: elsewhere, actingAs: true }, 'key.lookup', KEY, { report_id: 'r' });
    expect(store.events).toMatchObject([
      { org_id: elsewhere, action: 'key.lookup', key_id: KEY, outcome: 'OK', details: { report_id: 'r' } },
    ]);
  });
});

describe('AuditLog.list', () => {
  const query = (over: Partial<ListAuditInput> = {}): ListAuditInput => ({ pageSize: 2, pageToken: '', action: '', keyId: '', ...over });

  async function withEvents() {
    const s = setup();
    for (const action of ['key.create', 'key.update', 'key.revoke', 'key.delete'] as const) {
      await s.log.around(ctx, action, KEY, true, async () => undefined);
      s.clock.advance(1_000);
    }
    await s.log.around(userContext(newId('org')), 'key.create', KEY, true, async () => undefined);
    return s;
  }

  it('pages through the organization’s trail, newest first', async () => {
    const { log } = await withEvents();
    const first = await log.list(ctx, query());
    expect(first.events.map((e) => e.action)).toEqual(['key.delete', 'key.revoke']);
    const second = await log.list(ctx, query({ pageToken: first.nextPageToken }));
    expect(second.events.map((e) => e.action)).toEqual(['key.update', 'key.create']);
    expect(second.nextPageToken).toBe('');
  });

  it('filters by action and time, and refuses a token issued for other filters', async () => {
    const { log } = await withEvents();
    const revokes = await log.list(ctx, query({ action: 'key.revoke' }));
    expect(revokes.events.map((e) => e.action)).toEqual(['key.revoke']);
    const window = await log.list(
      ctx,
      query({ startTime: new Date('2025-06-01T12:00:01.000Z'), endTime: new Date('2025-06-01T12:00:03.000Z') }),
    );
    expect(window.events.map((e) => e.action)).toEqual(['key.revoke', 'key.update']);
    const first = await log.list(ctx, query());
    await expect(log.list(ctx, query({ pageToken: first.nextPageToken, action: 'key.create' }))).rejects.toMatchObject({
      reason: 'INVALID_PAGE_TOKEN',
    });
  });

  it('is for users and API keys of the organization, not services', async () => {
    const { log } = await withEvents();
    await expect(log.list(userContext(ORG, 'member'), query())).resolves.toMatchObject({ events: expect.any(Array) });
    await expect(log.list(contextOf({ kind: 'service', id: 'service:1' }, ''), query())).rejects.toMatchObject({
      reason: 'PERMISSION_DENIED',
    });
  });
});
