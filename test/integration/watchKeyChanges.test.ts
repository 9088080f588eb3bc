import { Metadata, status } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { encodePosition } from '../../src/domain/changeFeed';
import { hashSecret } from '../../src/domain/keyFormat';
import {
  KeyChangeKind,
  ResetReason,
  WatchKeyChangesResponse,
  type WatchKeyChangesResponse as Message,
} from '../../src/gen/apikeys/v1/verify_service';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';
import { sampleValue, scrape } from '../support/prometheus';
import { changeOf, isHeartbeat, resetOf, watch, type Watch } from '../support/watch';

const RETENTION_SECONDS = 120;

/** WatchKeyChanges against two real instances on one database. */
describe('WatchKeyChanges', () => {
  let a: TestServer;
  let b: TestServer;
  let admin: Metadata;
  let service: Metadata;
  const open: Watch[] = [];
  const watchOn = (s: TestServer, position = '', md = service) => {
    const w = watch(s.address, md, position);
    open.push(w);
    return w;
  };

  beforeAll(async () => {
    a = await startTestServer('watch_key_changes', { KEY_CHANGE_RETENTION_SECONDS: String(RETENTION_SECONDS), ORG_KEY_LIMIT: '1000' });
    b = await startSecondInstance(a, { KEY_CHANGE_RETENTION_SECONDS: String(RETENTION_SECONDS) });
    admin = (await a.admin()).metadata;
    service = bearer(a.verifyToken);
  });
  afterEach(() => {
    for (const w of open.splice(0)) w.cancel();
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  const create = async (scopes = ['read']) => {
    const { key, secret } = await a.clients.keys.createKey({ name: 'watched', scopes }, admin);
    return { id: key!.id, secret, hash: hashSecret(secret) };
  };
  const changeFor = (keyId: string, kind: KeyChangeKind) => (m: Message) => changeOf(m)?.keyId === keyId && changeOf(m)?.kind === kind;

  it('is for service credentials only: users and API keys are refused', async () => {
    const user = watchOn(a, '', admin);
    const { secret } = await create(['read', 'write']);
    const apiKey = watchOn(a, '', bearer(secret));
    for (const w of [user, apiKey]) {
      const end = await w.ended;
      expect(end.ok ? 'OK' : status[end.error.code]).toBe('PERMISSION_DENIED');
      expect(w.messages).toEqual([]);
    }
    const granted = watchOn(a);
    expect(isHeartbeat(await granted.next(() => true))).toBe(true);
  });

  it('sends an event for every change that can end, narrow or create a key, naming it by id and hash, and nothing secret', async () => {
    const w = watchOn(a);
    await w.next(isHeartbeat);
    const { CHANGED, CREATED, DELETED } = {
      CHANGED: KeyChangeKind.KEY_CHANGE_KIND_CHANGED,
      CREATED: KeyChangeKind.KEY_CHANGE_KIND_CREATED,
      DELETED: KeyChangeKind.KEY_CHANGE_KIND_DELETED,
    };
    const keys = await Promise.all([create(['read', 'write']), create(), create(), create(), create()]);
    const [narrowed, revoked, archived, rotated, deleted] = keys;
    const secrets = keys.map((k) => k.secret);
    for (const k of keys) await w.next(changeFor(k.id, CREATED));

    const expected: Array<{ label: string; keyId: string; kind: KeyChangeKind; hash: string }> = [];
    const expect1 = (label: string, key: { id: string; hash: string }, kind = CHANGED) =>
      expected.push({ label, keyId: key.id, kind, hash: key.hash });

    await a.clients.keys.updateKey({ key: { id: narrowed.id, scopes: ['read'] }, updateMask: ['scopes'] }, admin);
    expect1('scopes narrowed', narrowed);
    await a.clients.keys.updateKey(
      { key: { id: narrowed.id, expireTime: new Date(Date.now() + 3_600_000) }, updateMask: ['expire_time'] },
      admin,
    );
    expect1('expiry brought forward', narrowed);
    await a.clients.keys.revokeKey({ id: revoked.id }, admin);
    expect1('revoke', revoked);
    await a.clients.keys.archiveKey({ id: archived.id }, admin);
    expect1('archive', archived);
    await a.clients.keys.reactivateKey({ id: archived.id }, admin);
    expect1('reactivate', archived);
    const rotation = await a.clients.keys.rotateKey({ id: rotated.id, overlap: { seconds: 0, nanos: 0 } }, admin);
    secrets.push(rotation.secret);
    expect1('rotation (old key)', rotated);
    expect1('rotation (successor)', { id: rotation.key!.id, hash: hashSecret(rotation.secret) }, CREATED);
    await a.clients.keys.deleteKey({ id: deleted.id }, admin);
    expect1('delete', deleted, DELETED);

    for (const e of expected) {
      const got = changeOf(await w.next(changeFor(e.keyId, e.kind)));
      expect({ label: e.label, ...got }).toEqual({ label: e.label, keyId: e.keyId, keyHash: e.hash, kind: e.kind });
    }
    // Two updates of one key are two events: each change-log entry is sent once.
    expect(w.messages.filter(changeFor(narrowed.id, CHANGED))).toHaveLength(2);
    // Nothing secret on the wire: no secret, nor its random part, in any message's bytes or fields.
    const wire = Buffer.concat(w.messages.map((m) => Buffer.from(WatchKeyChangesResponse.encode(m).finish()))).toString('latin1');
    const json = JSON.stringify(w.messages);
    for (const s of secrets) {
      const random = s.slice('sk_live_'.length, -6);
      for (const text of [wire, json]) {
        expect(text.includes(s)).toBe(false);
        expect(text.includes(random)).toBe(false);
      }
    }
  });

  it('sends changes made through another instance once its change-log poll has read them', async () => {
    const w = watchOn(b);
    await w.next(isHeartbeat);
    const key = await create();
    await a.clients.keys.revokeKey({ id: key.id }, admin);
    expect(changeOf(await w.next(changeFor(key.id, KeyChangeKind.KEY_CHANGE_KIND_CHANGED)))?.keyHash).toBe(key.hash);
  });

  it('resumes from a position: a subscriber that comes back, to any instance, first gets the changes it missed', async () => {
    const first = watchOn(a);
    await first.next(isHeartbeat);
    const [revoked, deleted] = await Promise.all([create(), create()]);
    // A heartbeat after the creations: its position covers everything up to a poll that saw them.
    const created = await first.next(changeFor(deleted.id, KeyChangeKind.KEY_CHANGE_KIND_CREATED));
    const position = (await first.next((m) => isHeartbeat(m) && first.messages.indexOf(m) > first.messages.indexOf(created))).position;
    first.cancel();

    await a.clients.keys.revokeKey({ id: revoked.id }, admin);
    await a.clients.keys.deleteKey({ id: deleted.id }, admin);

    const resumed = watchOn(b, position);
    const gotRevoke = await resumed.next(changeFor(revoked.id, KeyChangeKind.KEY_CHANGE_KIND_CHANGED));
    const gotDelete = await resumed.next(changeFor(deleted.id, KeyChangeKind.KEY_CHANGE_KIND_DELETED));
    // Replayed before the stream went live: ahead of its first heartbeat.
    const firstHeartbeat = resumed.messages.indexOf(await resumed.next(isHeartbeat));
    expect(firstHeartbeat).toBeGreaterThan(resumed.messages.indexOf(gotRevoke));
    expect(firstHeartbeat).toBeGreaterThan(resumed.messages.indexOf(gotDelete));
    expect(resumed.messages.filter((m) => resetOf(m))).toEqual([]);
  });

  const badPositions: Array<[string, () => string, ResetReason]> = [
    [
      'older than the change log holds',
      () => encodePosition(Date.now() - (RETENTION_SECONDS + 60) * 1000),
      ResetReason.RESET_REASON_POSITION_EXPIRED,
    ],
    ['in the future', () => encodePosition(Date.now() + 3_600_000), ResetReason.RESET_REASON_POSITION_UNKNOWN],
    ['not issued by the service', () => 'not-a-position', ResetReason.RESET_REASON_POSITION_UNKNOWN],
  ];
  it.each(badPositions)('answers a position %s with a RESET first, then streams on', async (_label, position, reason) => {
    const w = watchOn(a, position());
    const first = await w.next(() => true);
    expect(resetOf(first)?.reason).toBe(reason);
    expect(first.position).toMatch(/\S/);
    const key = await create();
    await a.clients.keys.revokeKey({ id: key.id }, admin);
    await w.next(changeFor(key.id, KeyChangeKind.KEY_CHANGE_KIND_CHANGED));
  });

  it('shows on /metrics: open streams, messages sent by type, RESETs by reason', async () => {
    const metricsOf = async () => {
      const samples = await scrape(b.app.metricsPort!);
      const value = (name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels) ?? 0;
      return {
        subscribers: value('apikeys_watch_subscribers'),
        changes: value('apikeys_watch_messages_sent_total', { type: 'change' }),
        resets: value('apikeys_watch_resets_total', { reason: 'POSITION_UNKNOWN' }),
      };
    };
    const before = await metricsOf();
    const w = watchOn(b, 'not-a-position');
    expect(resetOf(await w.next(() => true))?.reason).toBe(ResetReason.RESET_REASON_POSITION_UNKNOWN);
    const key = await create();
    await b.clients.keys.revokeKey({ id: key.id }, admin);
    await w.next(changeFor(key.id, KeyChangeKind.KEY_CHANGE_KIND_CHANGED));
    const during = await metricsOf();
    expect(during.subscribers).toBe(before.subscribers + 1);
    expect(during.resets).toBe(before.resets + 1);
    expect(during.changes).toBeGreaterThanOrEqual(before.changes + 1);
    w.cancel();
    for (let i = 0; i < 100 && (await metricsOf()).subscribers !== before.subscribers; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await metricsOf()).subscribers).toBe(before.subscribers);
  });

  it('ends its streams cleanly when the server shuts down, without holding the drain for the grace period', async () => {
    const c = await startSecondInstance(a, { SHUTDOWN_GRACE_MS: '60000', LOG_LEVEL: 'info' });
    const w = watchOn(c);
    await w.next(isHeartbeat);
    await c.stop();
    expect(await w.ended).toEqual({ ok: true });
    const stopped = c.logs.map((l) => JSON.parse(l) as { msg: string; calls?: string }).find((l) => l.msg === 'apikeys stopped');
    expect(stopped?.calls).toBe('drained');
  });
});
