import type { CommandStartedEvent } from 'mongodb';
import { newId } from '../../src/domain/ids';
import { MAX_DOCUMENTS_PER_WRITE } from '../../src/storage/writeBatches';
import { parseMetrics, sampleValue } from '../support/prometheus';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY_MS = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);
/** The UTC day `daysAgo` days ago, YYYY-MM-DD. */
const day = (daysAgo: number) =>
  ago(daysAgo * DAY_MS)
    .toISOString()
    .slice(0, 10);

/** The retention sweep on the real server: for each rule, old documents go and recent ones stay. */
describe('retention sweep', () => {
  let s: TestServer;
  /** ids named in delete commands, per collection. */
  const deletes: { collection: string; ids: number }[] = [];

  beforeAll(async () => {
    // The defaults of every retention setting; only the sweep runs more often than in production.
    s = await startTestServer('retention', { RETENTION_SWEEP_INTERVAL_MS: '200' });
    s.app.storage.client.on('commandStarted', (e: CommandStartedEvent) => {
      if (e.commandName !== 'delete') return;
      for (const d of e.command.deletes as { q: { _id?: { $in?: unknown[] } } }[]) {
        deletes.push({ collection: e.command.delete as string, ids: d.q._id?.$in?.length ?? Infinity });
      }
    });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const metric = async (name: string, labels: Record<string, string>) =>
    sampleValue(parseMetrics(await s.app.metrics.registry.metrics()), name, labels) ?? 0;

  /** Waits until two sweeps have completed, so at least one started after the caller's inserts. */
  async function twoSweeps(): Promise<void> {
    const start = await metric('apikeys_retention_sweeps_total', { outcome: 'ok' });
    for (let i = 0; i < 200; i++) {
      if ((await metric('apikeys_retention_sweeps_total', { outcome: 'ok' })) >= start + 2) return;
      await sleep(50);
    }
    const failed = await metric('apikeys_retention_sweeps_total', { outcome: 'error' });
    throw new Error(`no two successful sweeps within 10 s (failed sweeps: ${failed}); logs:\n${s.logs.slice(-5).join('')}`);
  }

  const deleted = (collection: string) => metric('apikeys_retention_deleted_total', { collection });

  it('key_usage_daily: days older than USAGE_RETENTION_DAYS (400) go, later days stay', async () => {
    const keyId = newId('key');
    const doc = (d: string) => ({ _id: `${keyId}|${d}`, key_id: keyId, day: d, count: 3 });
    await s.collections.usage.insertMany([doc(day(402)), doc(day(401)), doc(day(399)), doc(day(0))]);
    await twoSweeps();
    const left = await s.collections.usage.find({ key_id: keyId }).toArray();
    expect(left.map((d) => d.day).sort()).toEqual([day(399), day(0)]);
    expect(await deleted('key_usage_daily')).toBe(2);
  });

  it('key_usage_daily: counts kept per instance and result code go by their day as well', async () => {
    const keyId = newId('key');
    const orgId = newId('org');
    const doc = (d: string, instance: string, code: string) => ({
      _id: `${keyId}|${d}|${instance}|${code}`,
      org_id: orgId,
      key_id: keyId,
      day: d,
      code: code as 'VALID',
      count: 2,
    });
    const before = await deleted('key_usage_daily');
    await s.collections.usage.insertMany([
      doc(day(401), 'i1', 'VALID'),
      doc(day(401), 'i2', 'VALID'),
      doc(day(401), 'i1', 'RATE_LIMITED'),
      doc(day(399), 'i1', 'VALID'),
      doc(day(399), 'i2', 'REVOKED'),
      doc(day(0), 'i1', 'VALID'),
    ]);
    await twoSweeps();
    const left = await s.collections.usage.find({ org_id: orgId }).toArray();
    expect(left.map((d) => d._id).sort()).toEqual(
      [`${keyId}|${day(399)}|i1|VALID`, `${keyId}|${day(399)}|i2|REVOKED`, `${keyId}|${day(0)}|i1|VALID`].sort(),
    );
    expect((await deleted('key_usage_daily')) - before).toBe(3);
  });

  it('audit_events: events older than AUDIT_RETENTION_DAYS (400) go, in deletes of at most 50 ids; later ones stay', async () => {
    const orgId = newId('org');
    const event = (time: Date) => ({
      _id: newId('evt'),
      org_id: orgId,
      actor: newId('usr'),
      acting_as: null,
      action: 'key.create',
      key_id: null,
      time,
      request_id: 'r',
      outcome: 'OK',
      method: 'CreateKey',
    });
    const old = Array.from({ length: 120 }, (_, i) => event(ago(401 * DAY_MS + i * 1000)));
    const kept = [event(ago(399 * DAY_MS)), event(ago(0))];
    for (let i = 0; i < old.length; i += 50) await s.collections.audit.insertMany(old.slice(i, i + 50));
    await s.collections.audit.insertMany(kept);
    await twoSweeps();
    const left = await s.collections.audit.find({ org_id: orgId }, { projection: { _id: 1 } }).toArray();
    expect(left.map((e) => e._id).sort()).toEqual(kept.map((e) => e._id).sort());
    expect(await deleted('audit_events')).toBe(120);
    const auditDeletes = deletes.filter((d) => d.collection === 'audit_events');
    expect(auditDeletes.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...auditDeletes.map((d) => d.ids))).toBeLessThanOrEqual(MAX_DOCUMENTS_PER_WRITE);
  });

  it('create_requests: requests past their idempotency window go with their sealed secret, others stay', async () => {
    const orgId = newId('org');
    const request = (id: string, createdAt: Date, expiresAt: Date) => ({
      _id: `${orgId}:${id}`,
      org_id: orgId,
      key_id: newId('key'),
      caller: newId('usr'),
      fingerprint: 'f',
      created_at: createdAt,
      expires_at: expiresAt,
      completed: true,
      secret_box: { kid: 'k1', iv: 'iv', ciphertext: 'sealed', tag: 'tag' },
    });
    await s.collections.createRequests.insertMany([
      request('ended', ago(DAY_MS + 60_000), ago(60_000)),
      request('open', ago(DAY_MS - 60_000), ago(-60_000)),
      // Made under a shorter window than IDEMPOTENCY_WINDOW_SECONDS: its own end counts.
      request('ended-shorter-window', ago(3_600_000), ago(60_000)),
      // Made under a longer window: the window configured now (1 day) counts.
      request('ended-longer-window', ago(DAY_MS + 60_000), ago(-DAY_MS)),
    ]);
    await twoSweeps();
    const left = await s.collections.createRequests.find({ org_id: orgId }).toArray();
    expect(left.map((r) => r._id)).toEqual([`${orgId}:open`]);
    expect(await deleted('create_requests')).toBe(3);
  });

  it('key_changes: entries older than KEY_CHANGE_RETENTION_SECONDS (1 hour) go, later ones stay', async () => {
    const keyId = newId('key');
    const change = (at: Date) => ({
      _id: newId('chg'),
      key_id: keyId,
      org_id: newId('org'),
      hash: 'f'.repeat(64),
      etag: 'e',
      kind: 'changed' as const,
      at,
    });
    const kept = change(ago(600_000));
    await s.collections.changes.insertMany([change(ago(3_600_000 + 60_000)), kept]);
    await twoSweeps();
    const left = await s.collections.changes.find({ key_id: keyId }).toArray();
    expect(left.map((c) => c._id)).toEqual([kept._id]);
    expect(await deleted('key_changes')).toBe(1);
  });

  it('rate_counters: counters of windows that ended more than a minute ago go; current and just-ended ones stay', async () => {
    const keyId = newId('key');
    const counter = (endedAgoMs: number, instance: string) => {
      const end = ago(endedAgoMs);
      const start = new Date(end.getTime() - 10_000);
      return {
        _id: `${keyId}|10000|${start.getTime()}|${instance}`,
        key_id: keyId,
        window_start: start,
        window_end: end,
        instance,
        count: 3,
        claim: 5,
      };
    };
    const kept = [counter(-5_000, 'a'), counter(-5_000, 'b'), counter(30_000, 'a')];
    await s.collections.rateCounters.insertMany([counter(61_000, 'a'), counter(61_000, 'b'), counter(3_600_000, 'a'), ...kept]);
    await twoSweeps();
    const left = await s.collections.rateCounters.find({ key_id: keyId }).toArray();
    expect(left.map((c) => c._id).sort()).toEqual(kept.map((c) => c._id).sort());
    expect(await deleted('rate_counters')).toBe(3);
  });

  it('key_mutations: claims that can no longer decide a change go; claims that still could stay', async () => {
    const { metadata } = await s.admin();
    const create = async (name: string) => (await s.clients.keys.createKey({ name, scopes: ['read'] }, metadata)).key!;
    const changed = await create('changed');
    const updated = await s.clients.keys.updateKey({ key: { id: changed.id, name: 'renamed' }, updateMask: ['name'] }, metadata);
    const pending = await create('pending');
    const abandoned = await create('abandoned');
    const claim = (keyId: string, etag: string, at: Date) => ({ _id: `${keyId}:${etag}`, key_id: keyId, at });
    const m = s.collections.mutations;

    // Finished: the update's claim of the version it replaced, once past the 30 s grace.
    const replaced = `${changed.id}:${changed.etag}`;
    expect(await m.countDocuments({ _id: replaced })).toBe(1);
    await m.updateOne({ _id: replaced }, { $set: { at: ago(60_000) } });
    // Still live: a claim of a key's current version whose change has not landed (10 min old);
    // and a fresh claim of a version already gone (a stale etag, within the grace).
    const live = [claim(pending.id, pending.etag, ago(600_000)), claim(updated.key!.id, 'stale-etag', ago(0))];
    // Finished: a claim of a current version older than an hour (its change never landed), and
    // a claim of a key that no longer exists.
    const gone = [claim(abandoned.id, abandoned.etag, ago(7_200_000)), claim(newId('key'), 'e', ago(60_000))];
    await m.insertMany([...live, ...gone]);

    await twoSweeps();
    const ids = [replaced, ...live.map((c) => c._id), ...gone.map((c) => c._id)];
    const left = await m.find({ _id: { $in: ids } }).toArray();
    expect(left.map((c) => c._id).sort()).toEqual(live.map((c) => c._id).sort());
    expect(await deleted('key_mutations')).toBe(3);
  });
});
