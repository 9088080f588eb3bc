import { MongoServerError } from 'mongodb';
import { AuditLog } from '../../../src/domain/audit';
import { DomainError } from '../../../src/domain/errors';
import type { CallContext } from '../../../src/domain/principal';
import type { AuditRepository } from '../../../src/storage/auditRepository';
import type { AuditEventDocument } from '../../../src/storage/documents';

const ctx: CallContext = {
  principal: { kind: 'user', id: 'usr_01jabcdefghjkmnpqrstvwxyz0', emailVerified: true, orgId: 'org_01jabcdefghjkmnpqrstvwxyz0', role: 'admin', staff: false },
  orgId: 'org_01jabcdefghjkmnpqrstvwxyz0',
  actingAs: false,
  requestId: 'req-1',
  method: '/apikeys.v1.KeyService/RevokeKey',
};
const KEY = 'key_01jabcdefghjkmnpqrstvwxyz0';

/** An audit store whose first `failures` inserts fail; `lostAnswer` makes a failing insert land anyway. */
function store(failures: number, opts: { lostAnswer?: boolean } = {}) {
  const events: AuditEventDocument[] = [];
  let attempts = 0;
  const repo = {
    async insert(e: AuditEventDocument) {
      attempts++;
      if (events.some((x) => x._id === e._id)) throw new MongoServerError({ message: 'E11000 duplicate key', code: 11000 });
      if (attempts <= failures) {
        if (opts.lostAnswer) events.push(e);
        throw new Error('connection reset');
      }
      events.push(e);
    },
  } as unknown as AuditRepository;
  return { repo, events, attempts: () => attempts };
}

describe('AuditLog.around', () => {
  it('records one event for a change, retrying a failed write', async () => {
    const s = store(2);
    const reported: string[] = [];
    const log = new AuditLog(s.repo, () => new Date(), Buffer.alloc(32), (what) => reported.push(what));
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => 'done')).resolves.toBe('done');
    expect(s.events).toHaveLength(1);
    expect(s.events[0]).toMatchObject({ action: 'key.revoke', key_id: KEY, outcome: 'OK', actor: ctx.principal.id });
    expect(reported).toEqual([]);
  });

  it('never doubles an event whose write landed but whose answer was lost', async () => {
    const s = store(1, { lostAnswer: true });
    const log = new AuditLog(s.repo, () => new Date(), Buffer.alloc(32), () => undefined);
    await log.around(ctx, 'key.revoke', KEY, true, async () => 'done');
    expect(s.events).toHaveLength(1);
    expect(s.attempts()).toBe(2);
  });

  it('answers a change that happened as success when the event cannot be written, and reports it', async () => {
    const s = store(Infinity);
    const reported: string[] = [];
    const log = new AuditLog(s.repo, () => new Date(), Buffer.alloc(32), (what) => reported.push(what));
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => 'done')).resolves.toBe('done');
    expect(reported).toEqual(['audit event key.revoke']);
  });

  it('keeps a failure its own error, even when its event cannot be written', async () => {
    const s = store(Infinity);
    const reported: string[] = [];
    const log = new AuditLog(s.repo, () => new Date(), Buffer.alloc(32), (what) => reported.push(what));
    const refused = new DomainError('KEY_REVOKED', 'already revoked');
    await expect(log.around(ctx, 'key.revoke', KEY, true, async () => Promise.reject(refused))).rejects.toBe(refused);
    expect(reported).toEqual(['audit event key.revoke']);
  });

  it('records a refusal with its reason, and reads only when acting as another organization', async () => {
    const s = store(0);
    const log = new AuditLog(s.repo, () => new Date(), Buffer.alloc(32), () => undefined);
    await expect(log.around(ctx, 'key.revoke', KEY, true, () => Promise.reject(new DomainError('SCOPE_ESCALATION', 'no')))).rejects.toThrow('no');
    await log.around(ctx, 'key.get', KEY, false, async () => 1);
    await log.around({ ...ctx, actingAs: true }, 'key.get', KEY, false, async () => 1);
    expect(s.events.map((e) => `${e.action}:${e.outcome}`)).toEqual(['key.revoke:SCOPE_ESCALATION', 'key.get:OK']);
  });
});
