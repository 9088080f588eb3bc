// The audit store's side of AuditLog's retries: writing an event again (its first write landed,
// the answer was lost) stores it once and is not an error.
import { newId } from '../../src/domain/ids';
import type { AuditEntry } from '../../src/domain/model';
import { AuditRepository } from '../../src/storage/auditRepository';
import { collectionsOf, QueryLimits } from '../../src/storage/mongo';
import { testDb, type TestDatabase } from '../support/database';

describe('AuditRepository.insert', () => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await testDb('audit_repository');
  });
  afterAll(async () => {
    await t?.drop();
    await t?.close();
  });

  it('stores an event written twice once, without failing the second write', async () => {
    const audit = collectionsOf(t.db).audit;
    const repo = new AuditRepository(audit, new QueryLimits(10_000));
    const orgId = newId('org');
    const event: AuditEntry = {
      _id: newId('evt'),
      org_id: orgId,
      actor: newId('usr'),
      acting_as: null,
      action: 'key.revoke',
      key_id: newId('key'),
      time: new Date(),
      request_id: 'req-1',
      outcome: 'OK',
      method: '/apikeys.v1.KeyService/RevokeKey',
    };
    await repo.insert(event);
    await expect(repo.insert(event)).resolves.toBeUndefined();
    expect(await audit.countDocuments({ org_id: orgId })).toBe(1);
  });
});
