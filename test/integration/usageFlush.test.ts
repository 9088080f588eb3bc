import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { generateSecret, hashSecret } from '../../src/domain/keyFormat';
import { collectionsOf, QueryLimits } from '../../src/storage/mongo';
import { UsageRepository } from '../../src/storage/usageRepository';
import { chunks, MAX_DOCUMENTS_PER_WRITE } from '../../src/storage/writeBatches';
import { privateDatabase, type PrivateDatabase } from '../support/database';
import { parseMetrics, sampleValue } from '../support/prometheus';
import { startTestServer, type TestServer } from '../support/server';
import { fakeKey } from '../unit/domain/fakeKey';

/** A client that gives up on an answer after `ms`, so a locked-up server fails the test instead of hanging it. */
const boundedClient = (uri: string, ms: number) =>
  MongoClient.connect(uri, { socketTimeoutMS: ms, serverSelectionTimeoutMS: ms, monitorCommands: true });

/** Sizes of the update commands sent to key_last_used / key_usage_daily while `run` runs. */
async function updateSizes(client: MongoClient, run: () => Promise<void>): Promise<number[]> {
  const sizes: number[] = [];
  const listener = (e: CommandStartedEvent) => {
    if (e.commandName === 'update') sizes.push((e.command.updates as unknown[]).length);
  };
  client.on('commandStarted', listener);
  try {
    await run();
  } finally {
    client.off('commandStarted', listener);
  }
  return sizes;
}

const keyIds = (n: number) => Array.from({ length: n }, (_, i) => `key_${String(i).padStart(26, '0')}`);

// Each case gets its own FerretDB (this test is about FerretDB's write limits): a regression
// would lock up the server it runs on, for good.

describe('FerretDB and multi-statement updates', () => {
  let ferret: PrivateDatabase;

  beforeAll(async () => {
    ferret = await privateDatabase();
  }, 60_000);
  afterAll(async () => {
    // The server is locked up by the last step: kill it rather than wait for a graceful stop.
    await ferret?.kill();
    await ferret?.stop();
  });

  it('answers a usage flush of 100 used keys in commands of 50, and locks up for good on the old single command', async () => {
    const client = await boundedClient(ferret.uri, 4_000);
    try {
      const c = collectionsOf(client.db('hazard'));
      const ids = keyIds(100);
      for (const part of chunks(ids)) await c.lastUsed.insertMany(part.map((_id) => ({ _id, last_used_at: new Date(0) })));

      const at = new Date();
      const sizes = await updateSizes(client, async () => {
        expect(
          await new UsageRepository(c, 'instance-1', new QueryLimits(4_000)).write({
            lastUsed: ids.map((keyId) => ({ keyId, at })),
            daily: [],
          }),
        ).toEqual({ ok: true });
      });
      expect(sizes).toEqual([MAX_DOCUMENTS_PER_WRITE, MAX_DOCUMENTS_PER_WRITE]);
      expect(await c.lastUsed.countDocuments({ last_used_at: at })).toBe(100);

      // The shape the flush had before: one update command with a statement per used key.
      const later = new Date(at.getTime() + 1_000);
      const single = c.lastUsed.bulkWrite(
        ids.map((_id) => ({ updateOne: { filter: { _id }, update: { $max: { last_used_at: later } }, upsert: true } })),
        { ordered: false },
      );
      // 100 statements never answer (99 take ~0.2 s), and the server answers no query after them.
      await expect(single).rejects.toThrow(/timed out/i);
      const other = await boundedClient(ferret.uri, 2_000);
      try {
        await expect(other.db('hazard').collection('key_last_used').findOne({})).rejects.toThrow(/timed out/i);
      } finally {
        await other.close(true);
      }
    } finally {
      await client.close(true);
    }
  }, 30_000);
});

describe('usage flush of 500 previously used keys', () => {
  const KEYS = 500;
  const PREVIOUS_COUNT = 5;
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(
      'usage_flush',
      // Only the flush on stop writes usage, so the whole batch goes in one flush.
      { USAGE_FLUSH_INTERVAL_MS: '3600000' },
      { ownDatabase: true },
    );
  }, 60_000);
  afterAll(() => server?.stop(), 30_000);

  it('writes every key in commands of at most 50, and the database still answers', async () => {
    // The keys are stored directly: 500 CreateKey calls would take FerretDB ~25 s here.
    const orgId = newId('org');
    const created = Array.from({ length: KEYS }, () => ({ id: newId('key'), secret: generateSecret(server.config.keyPrefix, 'live') }));
    const c = server.collections;
    for (const part of chunks(created)) {
      await c.keys.insertMany(part.map(({ id, secret }) => fakeKey({ _id: id, org_id: orgId, hash: hashSecret(secret) })));
    }

    // Previously used: each key already has a last use and a count for today.
    const before = new Date();
    const today = before.toISOString().slice(0, 10);
    for (const part of chunks(created)) {
      await c.lastUsed.insertMany(part.map(({ id }) => ({ _id: id, last_used_at: new Date(before.getTime() - 86_400_000) })));
      await c.usage.insertMany(part.map(({ id }) => ({ _id: `${id}|${today}`, key_id: id, day: today, count: PREVIOUS_COUNT })));
    }

    const service = bearer(server.verifyToken);
    for (const part of chunks(created, 25)) {
      const answers = await Promise.all(part.map(({ secret }) => server.clients.verify.verifyKey({ key: secret }, service)));
      expect(answers.every((a) => a.valid)).toBe(true);
    }
    const verified = new Date();

    const sizes = await updateSizes(server.app.storage.client, () => server.app.stop());
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_DOCUMENTS_PER_WRITE);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2 * KEYS);
    const flushed = parseMetrics(await server.app.metrics.registry.metrics());
    expect(sampleValue(flushed, 'apikeys_usage_flush_batches_total', { outcome: 'ok' })).toBe(1);
    expect(sampleValue(flushed, 'apikeys_usage_flush_keys_total')).toBe(KEYS);

    const check = await boundedClient(server.database!.uri, 5_000);
    try {
      const db = check.db(server.db.dbName);
      expect((await db.command({ ping: 1 })).ok).toBe(1);
      expect(await db.collection('api_keys').countDocuments({})).toBe(KEYS);
      const ids = created.map((k) => k.id);
      const lastUsed = await collectionsOf(db)
        .lastUsed.find({ _id: { $in: ids } })
        .toArray();
      expect(lastUsed).toHaveLength(KEYS);
      const wrong = lastUsed.filter((u) => u.last_used_at < before || u.last_used_at > verified);
      expect(wrong).toEqual([]);
      const counts = new Map<string, number>();
      for (const d of await collectionsOf(db)
        .usage.find({ key_id: { $in: ids } })
        .toArray()) {
        counts.set(d.key_id, (counts.get(d.key_id) ?? 0) + d.count);
      }
      expect(ids.filter((id) => counts.get(id) !== PREVIOUS_COUNT + 1)).toEqual([]);
    } finally {
      await check.close();
    }
  }, 120_000);
});
