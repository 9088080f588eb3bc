/**
 * ListKeys page depth: in an organization of LIST_DEPTH_KEYS keys (default 20 000) of which three
 * in four are revoked (interleaved), the default listing (active keys, page size 20) at page 1 and
 * at page 200. Pages are positions, not offsets, and `org_status` puts `status` before the sort,
 * so page 200 should cost what page 1 costs (target: ratio ≤ 1.5).
 *
 * One service process (src/main.ts); the keys stored directly, 50 documents per insert, copies of
 * a key the service created. The token of page 200 comes from walking there (pages of 100, then of
 * 20: a token does not depend on the page size). Then LIST_DEPTH_ROUNDS rounds (default 7) of page 1
 * and page 200, their order alternating; per round the ratio; median and min–max over the rounds,
 * spread = half the min–max range over the median. With MONGODB_URI, also the database's keys and
 * documents examined for each page's query (explain).
 *
 * Run: npx tsx bench/listDepth.ts (LIST_DEPTH_DATABASE=ferretdb-sqlite, the default, or
 * ferretdb-postgresql; MONGODB_URI to use that server: its database `list_depth` is dropped and
 * filled). Writes bench/results/list-depth.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { bearer, connectClients } from '../src/client/promiseClient';
import { mintUserToken } from '../src/dev/tokens';
import { ephemeralDatabaseChoice, startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { describeSecret, generateSecret } from '../src/domain/keyFormat';
import { collectionsOf } from '../src/storage/mongo';
import { chunks } from '../src/storage/writeBatches';
import { startServiceProcess } from '../test/support/serviceProcess';

const KEYS = Number(process.env.LIST_DEPTH_KEYS ?? 20_000);
const ROUNDS = Number(process.env.LIST_DEPTH_ROUNDS ?? 7);
const PAGE_SIZE = 20;
const DEEP_PAGE = 200;
const WALK_PAGE_SIZE = 100;
const DB_NAME = 'list_depth';
const DEADLINE_MS = 300_000;
const say = (s: string) => process.stdout.write(`[list-depth] ${s}\n`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (xs: number[]) => {
  const m = median(xs);
  const [min, max] = [Math.min(...xs), Math.max(...xs)];
  const r = (x: number) => Math.round(x * 100) / 100;
  return { median: r(m), min: r(min), max: r(max), spread: r((max - min) / 2 / m) };
};

async function main(): Promise<void> {
  const choice = process.env.MONGODB_URI ? undefined : ephemeralDatabaseChoice(process.env.LIST_DEPTH_DATABASE);
  const db = choice && (await startEphemeralDatabase({ database: choice, log: say }));
  const uri = process.env.MONGODB_URI ?? db!.uri;
  const mongo = await MongoClient.connect(uri);
  await mongo.db(DB_NAME).dropDatabase();
  const c = collectionsOf(mongo.db(DB_NAME));
  // It makes up its secrets; it creates the indexes.
  const svc = await startServiceProcess({
    MONGODB_URI: uri,
    MONGODB_DATABASE: DB_NAME,
    LOG_LEVEL: 'warn',
    MONGODB_OPERATION_TIMEOUT_MS: String(DEADLINE_MS),
  });
  const clients = connectClients(`127.0.0.1:${svc.port}`);
  try {
    const org = newId('org');
    const admin = bearer(await mintUserToken(svc.jwtSecret, { sub: newId('usr'), orgId: org, role: 'admin' }, '12h'));
    const template = await clients.keys.createKey({ name: 'depth', scopes: ['read'] }, admin);
    const model = (await c.keys.findOne({ _id: template.key!.id }))!;
    await c.keys.deleteOne({ _id: model._id });

    say(`storing ${KEYS} keys, three in four revoked…`);
    const now = Date.now();
    const docs = Array.from({ length: KEYS }, (_, n) => {
      const d = describeSecret(generateSecret('sk', 'live'));
      const created = new Date(now - 60_000 * (n + 1));
      const revoked = n % 4 !== 0;
      return {
        ...model,
        _id: newId('key', created.getTime()),
        hash: d.hash,
        start: d.start,
        masked_key: d.maskedKey,
        fingerprint: d.fingerprint,
        created_at: created,
        updated_at: created,
        ...(revoked ? { status: 'revoked' as const, revoked_at: new Date(now), revoked_by: model.created_by } : {}),
      };
    });
    for (const part of chunks(docs)) await c.keys.insertMany(part);
    say(`${KEYS} keys stored, ${KEYS / 4} active; walking to page ${DEEP_PAGE} of ${PAGE_SIZE}…`);

    const opts = () => ({ deadline: Date.now() + DEADLINE_MS });
    const list = (pageSize: number, pageToken: string) => clients.keys.listKeys({ pageSize, pageToken }, admin, opts());
    let token = '';
    const before = (DEEP_PAGE - 1) * PAGE_SIZE;
    for (let read = 0; read < before;) {
      const size = before - read >= WALK_PAGE_SIZE ? WALK_PAGE_SIZE : PAGE_SIZE;
      token = (await list(size, token)).nextPageToken;
      read += size;
    }
    const activeKeys = docs.filter((d) => d.status === 'active');
    const deepFirst = (await list(PAGE_SIZE, token)).keys[0].id;
    if (deepFirst !== activeKeys[before]._id) throw new Error(`page ${DEEP_PAGE} starts at ${deepFirst}, not at active key #${before + 1}`);

    const timed = async (pageToken: string) => {
      const started = performance.now();
      await list(PAGE_SIZE, pageToken);
      return performance.now() - started;
    };
    const rounds: { page1: number; deep: number; ratio: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = { page1: 0, deep: 0 };
      for (const which of r % 2 === 0 ? (['page1', 'deep'] as const) : (['deep', 'page1'] as const)) {
        t[which] = await timed(which === 'page1' ? '' : token);
      }
      rounds.push({ ...t, ratio: t.deep / t.page1 });
      say(`round ${r + 1}: page 1 ${Math.round(t.page1)} ms, page ${DEEP_PAGE} ${Math.round(t.deep)} ms`);
    }

    // On MongoDB: what each page's query examines, sent as KeyRepository.list sends it.
    let examined: Document | undefined;
    if (!choice) {
      // The position page 200's token holds: the last key of page 199.
      const position = activeKeys[before - 1];
      const listed = { org_id: org, status: { $in: ['active' as const] } };
      const after = {
        $or: [{ created_at: { $lt: position.created_at } }, { created_at: position.created_at, _id: { $lt: position._id } }],
      };
      const stats = async (filter: Document) => {
        const e = await c.keys
          .find(filter)
          .sort({ created_at: -1, _id: -1 })
          .limit(PAGE_SIZE + 1)
          .explain('executionStats');
        return { keys: e.executionStats?.totalKeysExamined, docs: e.executionStats?.totalDocsExamined };
      };
      examined = { page1: await stats(listed), [`page${DEEP_PAGE}`]: await stats({ ...listed, ...after }) };
    }
    const result = {
      database: choice ?? 'MONGODB_URI',
      keys: KEYS,
      active: KEYS / 4,
      pageSize: PAGE_SIZE,
      loadavg: loadavg().map((l) => Math.round(l * 10) / 10),
      page1Ms: summary(rounds.map((r) => r.page1)),
      [`page${DEEP_PAGE}Ms`]: summary(rounds.map((r) => r.deep)),
      ratio: summary(rounds.map((r) => r.ratio)),
      examined,
    };
    say(JSON.stringify(result));
    mkdirSync(join(__dirname, 'results'), { recursive: true });
    writeFileSync(join(__dirname, 'results', 'list-depth.json'), JSON.stringify(result, null, 2) + '\n');
  } finally {
    clients.close();
    svc.kill();
    await mongo.db(DB_NAME).dropDatabase();
    await mongo.close();
    await db?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
