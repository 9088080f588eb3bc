// The forward-auth endpoint's memory of secret → lookup hash (KnownSecrets): over real HTTP, with
// the real Verifier and cache over in-memory storage. What it may never do: answer from a stale
// result, or grow past its bound whatever is presented.
import type { Server } from 'node:http';
import type { Authenticator } from '../../../src/domain/authentication';
import { KeyCache } from '../../../src/domain/keyCache';
import { generateSecret, hashSecret } from '../../../src/domain/keyFormat';
import type { StoredKey } from '../../../src/domain/model';
import { UsageRecorder } from '../../../src/domain/usageRecorder';
import { Verifier } from '../../../src/domain/verification';
import { createLogger } from '../../../src/logging/logger';
import { Metrics } from '../../../src/observability/metrics';
import { forwardAuthHandler, forwardAuthServer, KnownSecrets } from '../../../src/transport/http/forwardAuth';
import { soleRateLimiter } from '../../support/fakes/rateCounterStore';
import { fakeKey } from '../domain/fakeKey';

const SERVICE_TOKEN = 'vt_test';

describe('KnownSecrets', () => {
  it('holds at most its bound under a flood of distinct secrets, dropping the oldest first', () => {
    const known = new KnownSecrets(100);
    for (let i = 0; i < 10_000; i++) known.remember(`sk_live_${i}`, `hash${i}`);
    expect(known.size).toBe(100);
    expect([known.hashOf('sk_live_9899'), known.hashOf('sk_live_9900'), known.hashOf('sk_live_9999')]).toEqual([
      undefined,
      'hash9900',
      'hash9999',
    ]);
  });

  it('remembers nothing with a bound of 0 (a Verify cache of size 0)', () => {
    const known = new KnownSecrets(0);
    known.remember('sk_live_x', 'hash');
    expect([known.size, known.hashOf('sk_live_x')]).toEqual([0, undefined]);
  });
});

describe('forward auth with KnownSecrets', () => {
  let server: Server;
  let base: string;
  let docs: Map<string, StoredKey>;
  let verifier: Verifier;
  let hashed: jest.SpyInstance;

  async function start(cacheMaxEntries: number): Promise<void> {
    docs = new Map();
    verifier = new Verifier({
      keyPrefix: 'sk',
      findByHash: (hash) => Promise.resolve(docs.get(hash) ?? null),
      now: () => new Date(),
      cache: new KeyCache({ maxEntries: cacheMaxEntries, negativeMaxEntries: 100, ttlMs: 60_000, negativeTtlMs: 60_000 }),
      usage: new UsageRecorder(),
      rateLimiter: soleRateLimiter(() => Date.now()),
      revocationBoundMs: 60_000,
      announcementTtlMs: 60_000,
      maxConcurrentReads: 100,
    });
    hashed = jest.spyOn(verifier, 'lookupHash');
    const authenticator = { isServiceToken: (t: string) => t === SERVICE_TOKEN } as unknown as Authenticator;
    const deps = { verifier, authenticator, metrics: new Metrics(), logger: createLogger('silent'), cacheMaxEntries };
    server = forwardAuthServer(forwardAuthHandler(deps));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  afterEach(() => new Promise((resolve) => server.close(resolve)));

  const stored = (over: Partial<StoredKey> = {}) => {
    const secret = generateSecret('sk', 'live');
    const doc = fakeKey({ hash: hashSecret(secret), etag: 'e1', ...over });
    docs.set(doc.hash, doc);
    return { secret, doc };
  };
  const status = async (secret: string) =>
    (await fetch(`${base}/authorize`, { headers: { 'x-service-token': SERVICE_TOKEN, 'x-api-key': secret } })).status;

  it('hashes a cached key once, then answers from the cache by the remembered hash', async () => {
    await start(100);
    const { secret } = stored();
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await status(secret));
    expect(answers).toEqual([200, 200, 200, 200, 200]);
    // The first call read storage, the second found the key cached and remembered its hash.
    expect(hashed).toHaveBeenCalledTimes(2);
  });

  it('refuses a revoked key on the next request, though its hash is remembered: results are never remembered', async () => {
    await start(100);
    const { secret, doc } = stored();
    for (let i = 0; i < 3; i++) expect(await status(secret)).toBe(200);
    docs.set(doc.hash, { ...doc, status: 'revoked', revoked_at: new Date(), etag: 'e2' });
    verifier.invalidate(doc.hash, 'e2'); // what the change-log poll does within the revocation bound
    expect([await status(secret), await status(secret)]).toEqual([401, 401]);
    expect(hashed).toHaveBeenCalledTimes(2); // still from memory: the refusal came from the cache and storage
  });

  it('never remembers a secret whose key is not found, however many are presented', async () => {
    await start(100);
    const made = Array.from({ length: 300 }, () => generateSecret('sk', 'live'));
    for (const secret of made) expect(await status(secret)).toBe(401);
    for (const secret of made.slice(0, 10)) expect(await status(secret)).toBe(401);
    // Each presentation hashed again: none was remembered.
    expect(hashed).toHaveBeenCalledTimes(310);
  });

  it('holds no more secrets than the Verify cache holds keys', async () => {
    await start(2);
    const keys = [stored(), stored(), stored()];
    for (const { secret } of keys) for (let i = 0; i < 2; i++) expect(await status(secret)).toBe(200);
    hashed.mockClear();
    // The two latest are remembered; the first was dropped for the third, so it is hashed again.
    for (const { secret } of keys.slice(1)) expect(await status(secret)).toBe(200);
    expect(hashed).toHaveBeenCalledTimes(0);
    expect(await status(keys[0].secret)).toBe(200);
    expect(hashed).toHaveBeenCalledTimes(1);
  });
});
