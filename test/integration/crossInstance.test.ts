import type { Metadata } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import type { KeyLookup } from '../../src/domain/ports';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The product's promise (VERIFY_REVOCATION_BOUND_MS): asserting it is the point of this file. */
const BOUND_MS = 1_000;
const { VERIFY_CODE_VALID: VALID } = VerifyCode;

interface Outcome {
  sentAt: number;
  code: VerifyCode | 'ERROR';
}

/**
 * Two instances on one database. Every way of ending a key, done through A while B has the key
 * cached: no VerifyKey sent to B later than BOUND_MS after the key ended answers VALID.
 */
describe('an ended key ends on every instance within 1 s', () => {
  let a: TestServer;
  let b: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let service: Metadata;
  /** Added to each of B's key lookups after the read itself: B's result arrives late. */
  let lookupDelayMs = 0;
  const slowly =
    (lookup: KeyLookup): KeyLookup =>
    async (hash) => {
      const key = await lookup(hash);
      if (lookupDelayMs > 0) await sleep(lookupDelayMs);
      return key;
    };
  const figures: string[] = [];

  beforeAll(async () => {
    a = await startTestServer('cross_instance');
    b = await startSecondInstance(a, {}, { wrapKeyLookup: slowly });
    admin = await a.admin();
    service = bearer(a.verifyToken);
  });
  afterAll(async () => {
    if (figures.length > 0) process.stdout.write(`first non-VALID answer from B after the end: ${figures.join(', ')}\n`);
    await b?.stop();
    await a?.stop();
  });

  const create = async (scopes = ['read']) => {
    const { key, secret } = await a.clients.keys.createKey({ name: 'shared', scopes }, admin.metadata);
    return { id: key!.id, secret };
  };
  const verifyOnB = (key: string, requiredScopes: string[]) =>
    b.clients.verify.verifyKey({ key, requiredScopes }, service).then(
      (r) => r.code,
      () => 'ERROR' as const,
    );

  /** One call to B every 50 ms from `from` until BOUND_MS + 600 ms after `endedAt`, each with when it was sent. */
  async function pollB(key: string, requiredScopes: string[], endedAt: number): Promise<Outcome[]> {
    const calls: Promise<Outcome>[] = [];
    while (Date.now() < endedAt + BOUND_MS + 600) {
      const sentAt = Date.now();
      calls.push(verifyOnB(key, requiredScopes).then((code) => ({ sentAt, code })));
      await sleep(50);
    }
    return Promise.all(calls);
  }

  /** The promise, checked on B's answers: nothing VALID after the bound, and never VALID again once it said otherwise. */
  function expectEndedWithinBound(label: string, outcomes: Outcome[], endedAt: number, expected: VerifyCode): void {
    const late = outcomes.filter((o) => o.sentAt > endedAt + BOUND_MS);
    expect(late.length).toBeGreaterThan(5);
    expect(new Set(late.map((o) => o.code))).toEqual(new Set([expected]));
    const firstEnded = outcomes.findIndex((o) => o.code !== VALID);
    expect(outcomes.slice(firstEnded).filter((o) => o.code === VALID)).toEqual([]);
    figures.push(`${label} ${Math.max(0, outcomes[firstEnded].sentAt - endedAt)} ms`);
  }

  /** B has the key cached (and answers VALID); then `end` runs through A and returns when the key counts as ended. */
  async function check(
    label: string,
    expected: VerifyCode,
    end: (key: { id: string; secret: string }) => Promise<number>,
    requiredScopes: string[] = [],
    scopes?: string[],
  ) {
    const key = await create(scopes);
    expect(await verifyOnB(key.secret, requiredScopes)).toBe(VALID);
    const lookups = b.app.storage.counters.keyLookups;
    expect(await verifyOnB(key.secret, requiredScopes)).toBe(VALID);
    expect(b.app.storage.counters.keyLookups).toBe(lookups); // warm: served from B's cache
    const endedAt = await end(key);
    expectEndedWithinBound(label, await pollB(key.secret, requiredScopes, endedAt), endedAt, expected);
  }

  const answered = async (call: Promise<unknown>) => {
    await call;
    return Date.now();
  };

  it('revoke → REVOKED', () =>
    check('revoke', VerifyCode.VERIFY_CODE_REVOKED, (k) => answered(a.clients.keys.revokeKey({ id: k.id }, admin.metadata))));

  it('archive → ARCHIVED', () =>
    check('archive', VerifyCode.VERIFY_CODE_ARCHIVED, (k) => answered(a.clients.keys.archiveKey({ id: k.id }, admin.metadata))));

  it('delete → NOT_FOUND', () =>
    check('delete', VerifyCode.VERIFY_CODE_NOT_FOUND, (k) => answered(a.clients.keys.deleteKey({ id: k.id }, admin.metadata))));

  it('expiry brought forward → EXPIRED', () =>
    check('expiry', VerifyCode.VERIFY_CODE_EXPIRED, async (k) => {
      const expireTime = new Date(Date.now() + 300);
      const at = await answered(a.clients.keys.updateKey({ key: { id: k.id, expireTime }, updateMask: ['expire_time'] }, admin.metadata));
      return Math.max(at, expireTime.getTime());
    }));

  it('scopes narrowed → INSUFFICIENT_SCOPE for the scope taken away', () =>
    check(
      'scopes',
      VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE,
      (k) => answered(a.clients.keys.updateKey({ key: { id: k.id, scopes: ['read'] }, updateMask: ['scopes'] }, admin.metadata)),
      ['write'],
      ['read', 'write'],
    ));

  it('rotation with zero overlap → the old secret is REVOKED', () =>
    check('rotate', VerifyCode.VERIFY_CODE_REVOKED, (k) =>
      answered(a.clients.keys.rotateKey({ id: k.id, overlap: { seconds: 0, nanos: 0 } }, admin.metadata)),
    ));

  it('leak report → REVOKED (on A at once)', () =>
    check('leak report', VerifyCode.VERIFY_CODE_REVOKED, async (k) => {
      const at = await answered(a.clients.keys.reportLeakedKeys({ reporter: 'scanner', secrets: [{ secret: k.secret }] }, service));
      expect((await a.clients.verify.verifyKey({ key: k.secret }, service)).code).toBe(VerifyCode.VERIFY_CODE_REVOKED);
      return at;
    }));

  it('with B’s reads slow, a read that began before the revoke never puts the old version back', async () => {
    const key = await create();
    lookupDelayMs = 1_500;
    try {
      const lookups = b.app.storage.counters.keyLookups;
      const early = verifyOnB(key.secret, []); // B's read starts now and sees the key active
      while (b.app.storage.counters.keyLookups === lookups) await sleep(5);
      const endedAt = await answered(a.clients.keys.revokeKey({ id: key.id }, admin.metadata));
      const outcomes = await pollB(key.secret, [], endedAt);
      expect(await early).toBe(VALID); // sent before the revoke: either answer is right
      expectEndedWithinBound('revoke during a slow read', outcomes, endedAt, VerifyCode.VERIFY_CODE_REVOKED);
      // Every read has ended; what B kept is the revoked version, served without another read.
      lookupDelayMs = 0;
      const settled = b.app.storage.counters.keyLookups;
      for (let i = 0; i < 5; i++) expect(await verifyOnB(key.secret, [])).toBe(VerifyCode.VERIFY_CODE_REVOKED);
      expect(b.app.storage.counters.keyLookups).toBe(settled);
    } finally {
      lookupDelayMs = 0;
    }
  });
});
