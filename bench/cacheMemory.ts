/**
 * Heap bytes per Verify cache entry: ENTRIES distinct keys verified through the real Verifier and
 * KeyCache, each "read" from storage as the driver returns it (a freshly BSON-decoded document
 * with the repository's projection), then a full GC. Nothing else is retained between calls.
 * Run: node --expose-gc --import tsx bench/cacheMemory.ts
 */
import { BSON } from 'mongodb';
import { newId } from '../src/domain/ids';
import { KeyCache, type VerifiedKeyFields } from '../src/domain/keyCache';
import { generateSecret, hashSecret } from '../src/domain/keyFormat';
import { RateLimiter } from '../src/domain/rateLimiter';
import type { UsageRecorder } from '../src/domain/usageRecorder';
import { Verifier } from '../src/domain/verification';
import type { KeyDocument } from '../src/storage/documents';
import { VERIFIED_KEY_FIELDS } from '../src/storage/keyRepository';

const ENTRIES = Number(process.env.ENTRIES ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

type Shape = (hash: string) => KeyDocument;

/** The sizing document of docs/architecture.md: two scopes, two metadata entries, no expiry or rate limit. */
const typical: Shape = (hash) => ({
  _id: newId('key'),
  org_id: newId('org'),
  workspace_id: null,
  name: 'billing-worker',
  scopes: ['read', 'write'],
  environment: 'live',
  hash,
  start: 'sk_live_XeQS',
  masked_key: 'sk_live_XeQS…uiwA',
  fingerprint: hash.slice(0, 6),
  metadata: { team: 'billing', tier: 'pro' },
  created_at: new Date(),
  updated_at: new Date(),
  last_used_at: null,
  expires_at: null,
  created_by: newId('usr'),
  status: 'active',
  revoked_at: null,
  revoked_by: null,
  revoked_comment: null,
  archived_at: null,
  allow_self_revoke: false,
  recoverable: false,
  etag: 'AbCdEfGhIjKl',
  rotated_from: null,
  replaced_by: null,
  rate_limit: null,
  secret_box: null,
});

/** Everything set that an entry keeps: workspace, expiry, rate limit. */
const full: Shape = (hash) => ({
  ...typical(hash),
  workspace_id: 'ws_payments',
  expires_at: new Date(Date.now() + 86_400_000),
  rate_limit: { limit: 100, window_seconds: 60 },
});

/** Full, with metadata that differs per key (nothing to share): the worst case. */
const fullOwnMetadata: Shape = (hash) => ({ ...full(hash), metadata: { customer: newId('usr'), tier: 'pro' } });

function projected(doc: KeyDocument): VerifiedKeyFields {
  const picked = Object.fromEntries(Object.keys(VERIFIED_KEY_FIELDS).map((f) => [f, doc[f as keyof KeyDocument]]));
  return BSON.deserialize(BSON.serialize(picked)) as VerifiedKeyFields;
}

async function bytesPerEntry(shape: Shape): Promise<number> {
  const cache = new KeyCache({ maxEntries: ENTRIES, negativeMaxEntries: 0, ttlMs: 3_600_000, negativeTtlMs: 1 });
  const verifier = new Verifier({
    keyPrefix: 'sk',
    findByHash: async (hash) => projected(shape(hash)),
    nowMs: Date.now,
    cache,
    usage: { note: () => {} } as unknown as UsageRecorder,
    // Each key's window state stays in memory, as in the service; the measured keys never need an exchange.
    rateLimiter: new RateLimiter({
      store: { exchange: () => Promise.reject(new Error('no exchange in this measurement')) },
      now: Date.now,
      syncIntervalMs: 200,
      exchangeTimeoutMs: 2_000,
      logger: { warn: () => {}, info: () => {} },
    }),
    revocationBoundMs: 3_600_000,
    announcementTtlMs: 3_600_000,
    maxConcurrentReads: 1_000,
  });
  gc!();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < ENTRIES; i++) {
    const r = await verifier.verify(generateSecret('sk', 'live'), []);
    if (r.code !== 'VALID') throw new Error(`entry ${i}: ${r.code}`);
  }
  gc!();
  const after = process.memoryUsage().heapUsed;
  if (cache.size !== ENTRIES) throw new Error(`cache holds ${cache.size}, expected ${ENTRIES}`);
  return Math.round((after - before) / ENTRIES);
}

void (async () => {
  hashSecret(generateSecret('sk', 'live')); // warm up lazily initialised modules before measuring
  for (const [name, shape] of [
    ['typical', typical],
    ['full', full],
    ['full, metadata per key', fullOwnMetadata],
  ] as const) {
    process.stdout.write(`${name}: ${await bytesPerEntry(shape)} bytes of heap per entry over ${ENTRIES} entries\n`);
  }
})();
