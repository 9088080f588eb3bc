import { InterceptingCall, type Interceptor, type Metadata } from '@grpc/grpc-js';
import { toVerifierResult } from '../../src/client/answers';
import { bearer } from '../../src/client/promiseClient';
import { KeyVerifier, type FeedNotice, type KeyVerifierOptions, type VerifierResult } from '../../src/client/verifier';
import { generateSecret } from '../../src/domain/keyFormat';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy';
import { until } from '../support/until';
import { isHeartbeat, watch } from '../support/watch';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The product's promise (VERIFY_REVOCATION_BOUND_MS), which the client keeps too: asserting it is the point. */
const BOUND_MS = 1_000;
const FLUSH_MS = 200;

/**
 * KeyVerifier (src/client/verifier.ts) against two real instances on one database; the client
 * reaches instance A through a TCP proxy that can cut or stall its connection.
 */
describe('KeyVerifier', () => {
  let a: TestServer;
  let b: TestServer;
  let admin: Metadata;
  let proxy: TcpProxy;
  let verifier: KeyVerifier;
  let notices: FeedNotice[];
  const made: Array<{ verifier: KeyVerifier; close: () => Promise<unknown> }> = [];

  const makeVerifier = (address: string, options: Partial<KeyVerifierOptions> = {}) => {
    const seen: FeedNotice[] = [];
    const v = new KeyVerifier({
      address,
      token: a.verifyToken,
      usageFlushIntervalMs: FLUSH_MS,
      reconnectInitialMs: 50,
      reconnectMaxMs: 400,
      callTimeoutMs: 500,
      onFeed: (n) => seen.push(n),
      ...options,
    });
    made.push({ verifier: v, close: () => v.close() });
    return { v, seen };
  };
  const heartbeatAfter = (seen: FeedNotice[], from: number) =>
    until('a heartbeat', () => seen.slice(from).some((n) => n.type === 'heartbeat'));

  beforeAll(async () => {
    a = await startTestServer('key_verifier', { USAGE_FLUSH_INTERVAL_MS: String(FLUSH_MS), ORG_KEY_LIMIT: '1000' });
    b = await startSecondInstance(a);
    admin = (await a.admin()).metadata;
    proxy = await startTcpProxy(a.address);
    ({ v: verifier, seen: notices } = makeVerifier(proxy.address));
    await heartbeatAfter(notices, 0);
  });
  afterAll(async () => {
    for (const m of made) await m.close();
    await proxy?.close();
    await b?.stop();
    await a?.stop();
  });

  const create = async (fields: { scopes?: string[]; rateLimit?: { limit: number; windowSeconds: number } } = {}, through = () => a) => {
    const { key, secret } = await through().clients.keys.createKey(
      { name: 'client', scopes: ['read'], metadata: { tier: 'pro' }, expireTime: new Date(Date.now() + 3_600_000), ...fields },
      admin,
    );
    return { id: key!.id, secret };
  };
  const viaServer = async (secret: string, requiredScopes: string[]) =>
    toVerifierResult(await a.clients.verify.verifyKey({ key: secret, requiredScopes }, bearer(a.verifyToken)));
  /**
   * A key the client holds in its cache: verified (a call), then answered locally. The key's
   * creation event may reach the client while that call is out, which keeps its answer out of the
   * cache (it might predate the change): then it is verified again.
   */
  const cached = async (v: KeyVerifier, secret: string) => {
    for (let attempt = 1; ; attempt++) {
      expect((await v.verify(secret)).code).toBe('VALID');
      const calls = v.stats.remote;
      expect((await v.verify(secret)).code).toBe('VALID');
      if (v.stats.remote === calls) return;
      expect(attempt).toBeLessThan(3);
    }
  };

  interface Outcome {
    sentAt: number;
    code: string;
  }
  /** The client asked every `everyMs` until BOUND_MS + 600 ms after `endedAt`. */
  async function pollClient(v: KeyVerifier, secret: string, endedAt: number, everyMs = 50): Promise<Outcome[]> {
    const calls: Array<Promise<Outcome>> = [];
    while (Date.now() < endedAt + BOUND_MS + 600) {
      const sentAt = Date.now();
      calls.push(
        v.verify(secret).then(
          (r) => ({ sentAt, code: r.code }),
          () => ({ sentAt, code: 'ERROR' }),
        ),
      );
      await sleep(everyMs);
    }
    return Promise.all(calls);
  }
  /** The promise: nothing asked later than BOUND_MS after the end is VALID. */
  function expectEndedWithinBound(outcomes: Outcome[], endedAt: number, allowed: string[]): void {
    const late = outcomes.filter((o) => o.sentAt > endedAt + BOUND_MS);
    expect(late.length).toBeGreaterThan(5);
    expect(late.filter((o) => !allowed.includes(o.code))).toEqual([]);
  }
  const answered = async (call: Promise<unknown>) => {
    await call;
    return Date.now();
  };

  it('answers as VerifyKey does; garbage costs no call, and found, unknown and refused keys are answered from the cache', async () => {
    const key = await create({ scopes: ['read', 'write'] });
    const revoked = await create();
    await a.clients.keys.revokeKey({ id: revoked.id }, admin);
    // Watching from now on: a client that heard of the revoke would not cache answers about the key for a while (settleMs).
    const { v: verifier, seen } = makeVerifier(a.address);
    await heartbeatAfter(seen, 0);
    const cases: Array<[string, string[]]> = [
      [key.secret, []],
      [key.secret, ['read', 'write']],
      [key.secret, ['admin']],
      [revoked.secret, []],
      [generateSecret('sk', 'live'), []],
    ];
    for (const [secret, scopes] of cases) {
      const expected = await viaServer(secret, scopes);
      expect(await verifier.verify(secret, scopes)).toEqual(expected);
    }
    expect((await verifier.verify(key.secret, ['write'])).valid).toBe(true);
    const calls = verifier.stats.remote;
    for (const [secret, scopes] of cases) await verifier.verify(secret, scopes);
    expect(await verifier.verify('sk_live_not-a-key')).toMatchObject({ valid: false, code: 'MALFORMED', keyId: '' });
    const tampered = key.secret.slice(0, -1) + (key.secret.endsWith('A') ? 'B' : 'A');
    expect((await verifier.verify(tampered)).code).toBe('MALFORMED');
    expect(verifier.stats.remote).toBe(calls);
  });

  it.each(['', 's', 'SK', '1sk', 'sk_', 'sk-live', 'skü', 'a'.repeat(17)])(
    'refuses keyPrefix %j at construction, as the server refuses it as KEY_PREFIX',
    (keyPrefix) => {
      expect(() => new KeyVerifier({ address: a.address, token: a.verifyToken, keyPrefix })).toThrow(
        `KeyVerifier: invalid keyPrefix ${JSON.stringify(keyPrefix)}`,
      );
    },
  );

  it('answers without a promise what it answers locally, and leaves the rest to verify()', async () => {
    const key = await create({ scopes: ['read', 'write'] });
    const { v, seen } = makeVerifier(a.address);
    await heartbeatAfter(seen, 0);
    expect(v.verifyCached(key.secret)).toBeUndefined(); // not cached yet: only the server knows
    expect(v.verifyCached('sk_live_not-a-key')).toMatchObject({ valid: false, code: 'MALFORMED' });
    const answered = await v.verify(key.secret, ['read']);
    const { local, remote } = v.stats;
    expect(v.verifyCached(key.secret, ['read'])).toEqual(answered);
    expect(v.verifyCached(key.secret, ['admin'])).toMatchObject({ valid: false, code: 'INSUFFICIENT_SCOPE', keyId: key.id });
    expect(v.stats).toEqual({ local: local + 2, remote });
    await v.close();
    expect(() => v.verifyCached(key.secret)).toThrow(/closed/);
  });

  it('asks the server once for a key many callers verify at once', async () => {
    const key = await create({ scopes: ['read', 'write'] });
    const calls = verifier.stats.remote;
    const scopes = [[], ['read'], ['write'], ['admin']];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => verifier.verify(key.secret, scopes[i % 4])));
    expect(verifier.stats.remote).toBe(calls + 1);
    expect(results.map((r) => r.code)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 4 === 3 ? 'INSUFFICIENT_SCOPE' : 'VALID')));
  });

  it('keeps a new key’s cached answer when the feed announces its creation (only a cached "no such key" would be stale)', async () => {
    const from = notices.length;
    // Through the other instance: the watched one learns of it at its next poll, after the client cached it.
    const key = await create({}, () => b);
    await cached(verifier, key.secret);
    await until('the creation event', () =>
      notices.slice(from).some((n) => n.type === 'change' && n.keyId === key.id && n.kind === 'created'),
    );
    const calls = verifier.stats.remote;
    expect((await verifier.verify(key.secret)).code).toBe('VALID');
    expect(verifier.stats.remote).toBe(calls);
  });

  it('leaves keys with a rate limit to the server, every time', async () => {
    const key = await create({ rateLimit: { limit: 2, windowSeconds: 3_600 } });
    const calls = verifier.stats.remote;
    const results: VerifierResult[] = [];
    for (let i = 0; i < 3; i++) results.push(await verifier.verify(key.secret));
    expect(results.map((r) => [r.code, r.rateLimit?.remaining])).toEqual([
      ['VALID', 1],
      ['VALID', 0],
      ['RATE_LIMITED', 0],
    ]);
    expect(verifier.stats.remote).toBe(calls + 3);
  });

  it.each([
    ['the instance it watches', () => a],
    ['another instance', () => b],
  ])('stops accepting a key revoked through %s within 1 s', async (_label, through) => {
    const key = await create();
    await cached(verifier, key.secret);
    const endedAt = await answered(through().clients.keys.revokeKey({ id: key.id }, admin));
    expectEndedWithinBound(await pollClient(verifier, key.secret, endedAt), endedAt, ['REVOKED']);
  });

  it('with its connection cut, stops accepting a key revoked meanwhile within 1 s, then reconnects by itself and replays what it missed', async () => {
    const key = await create();
    await cached(verifier, key.secret);
    const from = notices.length;
    proxy.cut();
    const endedAt = await answered(b.clients.keys.revokeKey({ id: key.id }, admin));
    const outcomes = await pollClient(verifier, key.secret, endedAt);
    expectEndedWithinBound(outcomes, endedAt, ['ERROR', 'REVOKED']);
    expect(notices.slice(from).some((n) => n.type === 'disconnected')).toBe(true);

    const restoredAt = notices.length;
    proxy.restore();
    await heartbeatAfter(notices, restoredAt);
    // Resumed from its last position: the revoke it missed was replayed.
    expect(notices.slice(restoredAt)).toContainEqual({ type: 'change', keyId: key.id, kind: 'changed' });
    expect((await verifier.verify(key.secret)).code).toBe('REVOKED');
  });

  it('with its stream stalled (nothing arrives, nothing fails), stops accepting a key revoked meanwhile within 1 s and reconnects once the silence is too long', async () => {
    const key = await create();
    await cached(verifier, key.secret);
    const from = notices.length;
    proxy.stall();
    const endedAt = await answered(b.clients.keys.revokeKey({ id: key.id }, admin));
    try {
      expectEndedWithinBound(await pollClient(verifier, key.secret, endedAt), endedAt, ['ERROR', 'REVOKED']);
      await until('the client to give up on the silent stream', () =>
        notices.slice(from).some((n) => n.type === 'disconnected' && /no message/.test(n.error?.message ?? '')),
      );
    } finally {
      proxy.restore();
    }
    await heartbeatAfter(notices, notices.length);
    expect((await verifier.verify(key.secret)).code).toBe('REVOKED');
  });

  it('with its feed down, stops accepting a key revoked through another instance within 1 s, though the instance it asks has not heard of it yet', async () => {
    // The feed alone is cut (what an idle-stream timeout of a proxy does): its messages are
    // dropped before the client sees them, while VerifyKey calls still reach instance A.
    let feedDown = false;
    const dropFeed: Interceptor = (options, next) =>
      new InterceptingCall(next(options), {
        start: (metadata, _listener, start) =>
          start(metadata, {
            onReceiveMessage: (message, pass) => {
              if (!(feedDown && options.method_definition.path.endsWith('/WatchKeyChanges'))) pass(message);
            },
          }),
      });
    const { v, seen } = makeVerifier(a.address, { channelOptions: { interceptors: [dropFeed] } });
    await heartbeatAfter(seen, 0);
    feedDown = true;
    const polls = watch(a.address, bearer(a.verifyToken));
    const rounds: Array<{ endedAt: number; outcomes: Outcome[]; lastValidMs?: number }> = [];
    try {
      await sleep(BOUND_MS + 100); // past the last heartbeat the client heard: only the bound vouches for its cache
      for (const firstAskMs of [0, 100, 200, 300, 350, 400, 0, 250]) {
        const key = await create();
        expect((await viaServer(key.secret, [])).code).toBe('VALID'); // cached on A
        // Right after one of A's polls: A answers from its cache, VALID, until its next poll (~500 ms).
        const from = polls.messages.length;
        await polls.next((m) => isHeartbeat(m) && polls.messages.indexOf(m) >= from);
        const endedAt = await answered(b.clients.keys.revokeKey({ id: key.id }, admin));
        // The client's first call for the key comes late in that window: A's answer is stale, and says how much.
        await sleep(firstAskMs);
        const outcomes = await pollClient(v, key.secret, endedAt, 10);
        const valid = outcomes.filter((o) => o.code === 'VALID');
        rounds.push({ endedAt, outcomes, lastValidMs: valid.length ? valid[valid.length - 1].sentAt - endedAt : undefined });
      }
    } finally {
      polls.cancel();
    }
    // The promise, as a property of every answer: nothing asked later than BOUND_MS after the
    // revoke's answer was VALID, in the worst of the rounds.
    for (const r of rounds) expectEndedWithinBound(r.outcomes, r.endedAt, ['REVOKED']);
    expect(Math.max(...rounds.map((r) => r.lastValidMs ?? -Infinity))).toBeLessThanOrEqual(BOUND_MS);
    // Not vacuous: in some rounds A still answered VALID after the revoke (its cache was behind), and the client held it.
    expect(rounds.some((r) => r.lastValidMs !== undefined)).toBe(true);
    expect(seen.some((n) => n.type === 'disconnected')).toBe(true);
  });

  it('clears its cache when the server answers its resume with a RESET', async () => {
    const c = await startSecondInstance(a, { WATCH_MAX_PENDING_EVENTS: '3' });
    const cProxy = await startTcpProxy(c.address);
    try {
      const { v, seen } = makeVerifier(cProxy.address);
      await heartbeatAfter(seen, 0);
      const kept = await create();
      await cached(v, kept.secret);
      cProxy.cut();
      // More changes than the server replays on a resume (WATCH_MAX_PENDING_EVENTS).
      for (const k of await Promise.all([create(), create(), create(), create(), create()])) {
        await a.clients.keys.revokeKey({ id: k.id }, admin);
      }
      const from = seen.length;
      cProxy.restore();
      await until('a reset', () => seen.slice(from).some((n) => n.type === 'cleared'));
      expect(seen.slice(from)).toContainEqual({ type: 'cleared', reason: 'SUBSCRIBER_BEHIND' });
      const calls = v.stats.remote;
      expect((await v.verify(kept.secret)).code).toBe('VALID');
      expect(v.stats.remote).toBe(calls + 1);
    } finally {
      await cProxy.close();
      await c.stop();
    }
  });

  it('reports the verifications it answered from its cache: last_used_time and the daily count include them after a flush', async () => {
    const key = await create();
    // Watching from after the creation: its event cannot keep the first answer out of the cache.
    const { v, seen } = makeVerifier(a.address);
    await heartbeatAfter(seen, 0);
    expect((await v.verify(key.secret)).code).toBe('VALID'); // a call: the server counts it
    let lastLocal = 0;
    for (let i = 0; i < 9; i++) {
      lastLocal = Date.now();
      expect((await v.verify(key.secret)).code).toBe('VALID');
    }
    expect(v.stats).toEqual({ local: 9, remote: 1 });
    await v.close(); // flushes the report
    await expect(v.verify(key.secret)).rejects.toThrow(/closed/);
    const usage = () => a.clients.keys.getKeyUsage({ keyId: key.id }, admin);
    await until('the server’s usage flush', async () => (await usage()).days[0]?.total === 10);
    expect((await usage()).days).toEqual([
      { day: new Date(lastLocal).toISOString().slice(0, 10), total: 10, counts: [{ code: VerifyCode.VERIFY_CODE_VALID, count: 10 }] },
    ]);
    const { key: shown } = await a.clients.keys.getKey({ id: key.id }, admin);
    expect(shown!.lastUsedTime!.getTime()).toBeGreaterThanOrEqual(lastLocal);
  });
});
