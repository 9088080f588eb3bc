/**
 * Scale: what Verify and key management cost as the stored keys grow. The database grows until
 * the big organization holds each of SCALE_SIZES live keys (default 1 000, 20 000, 100 000); at each
 * size one service process (src/main.ts) is measured, one call at a time, one warm-up round
 * (discarded) and SCALE_SAMPLES rounds (default 20) of:
 *   - verify cold: VerifyKey of a stored key never verified before (a lookup by hash);
 *   - create: CreateKey in the big organization (takes a place under its cap);
 *   - create (100-key org): CreateKey in an organization of 100 live keys under the same cap;
 *   - list page 1: ListKeys, page size 100, in the big organization;
 *   - list deep page: page 200 of size 100 when the organization has ≥ 20 000 live keys, else its
 *     last page, with the token the service handed out on the walk there (every page walked is
 *     timed too);
 *   - unused_since: ListKeys page 1 with unused_since 30 days ago.
 * The order of the six rotates from round to round, so the machine's noise spreads over all; the
 * ratios of create to create (100-key org) and of the deep page to page 1 are taken within each
 * round, then summarised (median, min–max).
 *
 * The keys are stored directly in the service's shape, 50 documents per insert: copies of a key
 * the service created, each with its own secret, 90 % in one big organization (cap raised on its
 * organization document), the rest in organizations of 10, besides the 100-key organization (the
 * same cap); one key in 20 revoked; each live key
 * holds its place under the cap (key_slots), 70 % were used in the last 20 days (key_last_used),
 * the rest never or 60 days ago. Alongside, the database's own plan (explain) of each query these
 * calls make, as the service sends it.
 *
 * Run: npx tsx bench/scale.ts (SCALE_DATABASE=ferretdb-postgresql — needs PostgreSQL installed, see
 * bench/README.md — or ferretdb-sqlite; SCALE_SIZES=1000,20000,100000; SCALE_SAMPLES=20;
 * SCALE_SKIP=list deep page,… to leave measurements out (skipping list page 1 also leaves out the
 * listing's queries sent alone); MONGODB_URI to use that server instead: its database `scale` is
 * dropped and filled).
 * Writes bench/results/scale.json (one entry per database, kept across runs), or SCALE_RESULTS.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { bearer, connectClients } from '../src/client/promiseClient';
import { mintUserToken } from '../src/dev/tokens';
import { ephemeralDatabaseChoice, startEphemeralDatabase, type EphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { describeSecret, generateSecret } from '../src/domain/keyFormat';
import { VerifyCode } from '../src/gen/apikeys/v1/verify_service';
import { collectionsOf, type Collections } from '../src/storage/mongo';
import type { KeyDocument } from '../src/storage/documents';
import { MAX_DOCUMENTS_PER_WRITE } from '../src/storage/writeBatches';
import { startServiceProcess, type ServiceProcess } from '../test/support/serviceProcess';

const SIZES = (process.env.SCALE_SIZES ?? '1000,20000,100000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const SAMPLES = Number(process.env.SCALE_SAMPLES ?? 20);
const DATABASE = process.env.MONGODB_URI ? 'MONGODB_URI' : ephemeralDatabaseChoice(process.env.SCALE_DATABASE ?? 'ferretdb-postgresql');
const SKIP = new Set(
  (process.env.SCALE_SKIP ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const RESULTS = process.env.SCALE_RESULTS ?? join(__dirname, 'results', 'scale.json');
const DB_NAME = 'scale';
const BIG_ORG_SHARE = 0.9;
const SMALL_ORG_KEYS = 10;
const REVOKED_EVERY = 20;
const USED_SHARE = 0.7;
const PAGE_SIZE = 100;
const DEEP_PAGE = 200;
const KEY_SPACING_MS = 5 * 60_000; // stored keys' creation times, newest first, 5 min apart
const DAY_MS = 86_400_000;
const DEADLINE_MS = 300_000;
const PROGRESS_EVERY = 10_000;
const QUERY_SAMPLES = 5;
const REFERENCE_ORG_LIVE = 100;
const MEASUREMENTS = ['verify cold', 'create', 'create (100-key org)', 'list page 1', 'list deep page', 'unused_since'] as const;
type Measurement = (typeof MEASUREMENTS)[number];
/** Ratios taken within each round: [numerator, denominator]. */
const ROUND_RATIOS: Record<string, [Measurement, Measurement]> = {
  'create ÷ create (100-key org)': ['create', 'create (100-key org)'],
  'list deep page ÷ list page 1': ['list deep page', 'list page 1'],
};
const say = (s: string) => process.stdout.write(`[scale] ${s}\n`);

interface Summary {
  n: number;
  p50: number;
  p90: number;
  min: number;
  max: number;
}

function summarize(values: number[], precision = 10): Summary {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * precision) / precision;
  return { n: s.length, p50: at(0.5), p90: at(0.9), min: at(0), max: at(1) };
}

/** Keys to store in one organization so that `live` of them are live (every REVOKED_EVERY-th is revoked). */
const storedForLive = (live: number) => (live <= 0 ? 0 : live + Math.floor((live - 1) / (REVOKED_EVERY - 1)));

function shuffle(items: unknown[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

/** What is stored so far, and what the next stage continues from. */
class Dataset {
  stored = 0;
  readonly bigOrg = newId('org');
  /** REFERENCE_ORG_LIVE live keys under the big organization's cap: CreateKey's cost apart from the organization's size. */
  readonly referenceOrg = newId('org');
  /** Secrets of live keys nobody has verified yet (verify cold takes from here). */
  readonly unverified: string[] = [];
  /** Per organization: the slot number the next stored key takes, unless the service took it. */
  private readonly nextSlot = new Map<string, number>();
  /**
   * Keys stored so far in the measured organizations, each of which has every REVOKED_EVERY-th of
   * its own keys revoked (so their live keys are exact); elsewhere every REVOKED_EVERY-th stored.
   */
  private readonly storedIn = new Map([
    [this.bigOrg, 0],
    [this.referenceOrg, 0],
  ]);
  private smallOrg = '';
  private smallOrgKeys = SMALL_ORG_KEYS;

  constructor(
    private readonly c: Collections,
    private readonly model: KeyDocument,
    private readonly now: Date,
  ) {}

  /**
   * Stores keys until the big organization holds `bigLive` live keys, BIG_ORG_SHARE of those
   * stored in this step; the first step also stores the 100-key organization.
   */
  async growTo(bigLive: number): Promise<void> {
    const big = storedForLive(bigLive) - this.storedIn.get(this.bigOrg)!;
    const orgs: string[] = Array.from({ length: big }, () => this.bigOrg);
    if (this.stored === 0) orgs.push(...Array.from({ length: storedForLive(REFERENCE_ORG_LIVE) }, () => this.referenceOrg));
    for (let i = 0; i < Math.round((big * (1 - BIG_ORG_SHARE)) / BIG_ORG_SHARE); i++) {
      if (this.smallOrgKeys === SMALL_ORG_KEYS) [this.smallOrg, this.smallOrgKeys] = [newId('org'), 0];
      this.smallOrgKeys++;
      orgs.push(this.smallOrg);
    }
    // Interleave the big organization's keys with the others, as they would have been created.
    shuffle(orgs);
    // CreateKey took random slot numbers in the measured organizations meanwhile.
    const measured = { org_id: { $in: [this.bigOrg, this.referenceOrg] } };
    const taken = new Set((await this.c.slots.find(measured, { projection: { _id: 1 } }).toArray()).map((s) => s._id));
    const batches = { keys: [] as Document[], slots: [] as Document[], lastUsed: [] as Document[] };
    const flush = async (force: boolean) => {
      for (const [name, docs] of Object.entries(batches) as [keyof typeof batches, Document[]][]) {
        if (docs.length === 0 || (!force && docs.length < MAX_DOCUMENTS_PER_WRITE)) continue;
        await this.c[name].insertMany(docs.splice(0) as never[]);
      }
    };
    for (const orgId of orgs) {
      const n = this.stored++;
      const inOrg = this.storedIn.get(orgId);
      if (inOrg !== undefined) this.storedIn.set(orgId, inOrg + 1);
      const secret = generateSecret('sk', 'live');
      const d = describeSecret(secret);
      const revoked = (inOrg ?? n) % REVOKED_EVERY === REVOKED_EVERY - 1;
      const created = new Date(this.now.getTime() - DAY_MS - n * KEY_SPACING_MS);
      const _id = newId('key');
      batches.keys.push({
        ...this.model,
        _id,
        org_id: orgId,
        hash: d.hash,
        start: d.start,
        masked_key: d.maskedKey,
        fingerprint: d.fingerprint,
        name: `scale ${n}`,
        created_at: created,
        updated_at: created,
        etag: randomBytes(9).toString('base64url'),
        ...(revoked ? { status: 'revoked', revoked_at: this.now, revoked_by: this.model.created_by, revoked_comment: null } : {}),
      });
      if (!revoked) {
        let slot = this.nextSlot.get(orgId) ?? 0;
        while (taken.has(`${orgId}:${slot}`)) slot++;
        this.nextSlot.set(orgId, slot + 1);
        batches.slots.push({ _id: `${orgId}:${slot}`, org_id: orgId, key_id: _id, n: slot, created_at: created });
        this.unverified.push(secret);
      }
      const used = Math.random() < USED_SHARE;
      if (used || Math.random() < 0.5) {
        const ago = used ? Math.random() * 20 * DAY_MS : 60 * DAY_MS;
        batches.lastUsed.push({ _id, last_used_at: new Date(this.now.getTime() - ago) });
      }
      await flush(false);
      if (this.stored % PROGRESS_EVERY === 0) say(`  ${this.stored} keys stored`);
    }
    await flush(true);
    // Verify cold takes random keys: shuffle once, then pop.
    shuffle(this.unverified);
  }
}

/** The database's plan for a find, in a few words: what FerretDB pushed down, or MongoDB's stages. */
function planOf(explain: Document): Document {
  const pg = explain.queryPlanner?.Plan;
  if (pg?.['Node Type']) {
    const nodes: string[] = [];
    for (let n = pg; n; n = n.Plans?.[0])
      nodes.push(n['Node Type'] + (n.Filter ? ` (${n.Filter})` : '') + (n['Index Name'] ? ` on ${n['Index Name']}` : ''));
    return { pushdown: { filter: explain.filterPushdown, sort: explain.sortPushdown, limit: explain.limitPushdown }, postgresql: nodes };
  }
  const stages: string[] = [];
  for (let s = explain.queryPlanner?.winningPlan; s; s = s.inputStage ?? s.inputStages?.[0]) {
    stages.push(s.stage + (s.indexName ? ` ${s.indexName}` : ''));
  }
  return stages.length > 0
    ? { stages, docsExamined: explain.executionStats?.totalDocsExamined, keysExamined: explain.executionStats?.totalKeysExamined }
    : {
        pushdown: { filter: explain.filterPushdown, sort: explain.sortPushdown, limit: explain.limitPushdown },
        queryPlanner: explain.queryPlanner,
      };
}

/**
 * The queries behind the measured calls, as src/storage sends them (filters copied from there),
 * sent straight to the database: each one's time (QUERY_SAMPLES, alone) and the database's plan.
 */
async function databaseQueries(c: Collections, ds: Dataset, cap: number): Promise<Record<string, { ms: Summary; plan: Document }>> {
  const org = ds.bigOrg;
  const listed = { org_id: org, status: { $in: ['active' as const] } };
  const newestFirst = { created_at: -1, _id: -1 } as const;
  const page = await c.keys.find(listed).sort(newestFirst).limit(PAGE_SIZE).toArray();
  const last = page[page.length - 1];
  const after = { $or: [{ created_at: { $lt: last.created_at } }, { created_at: last.created_at, _id: { $lt: last._id } }] };
  const listing = {
    'list (page 1)': () =>
      c.keys
        .find(listed)
        .sort(newestFirst)
        .limit(PAGE_SIZE + 1),
    'list (after page 1)': () =>
      c.keys
        .find({ ...listed, ...after })
        .sort(newestFirst)
        .limit(PAGE_SIZE + 1),
    'last use of a page ($in of 100 ids)': () => c.lastUsed.find({ _id: { $in: page.map((k) => k._id) } }),
  };
  const queries = {
    'findByHash (verify)': () => c.keys.find({ hash: page[0].hash }).limit(1),
    ...(SKIP.has('list page 1') ? {} : listing),
    "the organization's cap (create)": () => c.organizations.find({ _id: org }, { projection: { key_limit: 1 } }),
    'caps places were taken under (create)': () =>
      c.slotCaps
        .find({ org_id: org, cap: { $gte: cap } }, { projection: { cap: 1 } })
        .sort({ cap: -1 })
        .limit(1),
    // Only after several random places were taken (an organization near its cap): the walk's first batch.
    'taken places from a random one (create near the cap)': () =>
      c.slots
        .find({ org_id: org, n: { $gte: Math.floor(Math.random() * cap) } }, { projection: { _id: 0, n: 1 } })
        .sort({ n: 1 })
        .limit(101),
  };
  const verbosity = DATABASE === 'MONGODB_URI' ? 'executionStats' : 'queryPlanner';
  const out: Record<string, { ms: Summary; plan: Document }> = {};
  for (const [name, query] of Object.entries(queries)) {
    const ms: number[] = [];
    for (let i = 0; i < QUERY_SAMPLES; i++) {
      const started = performance.now();
      await query().toArray();
      ms.push(performance.now() - started);
    }
    out[name] = { ms: summarize(ms), plan: planOf(await query().explain(verbosity)) };
  }
  return out;
}

async function main(): Promise<void> {
  say(`database ${DATABASE}, sizes ${SIZES.join(', ')}, ${SAMPLES} samples each${SKIP.size ? `, skipping ${[...SKIP].join(', ')}` : ''}`);
  const db: EphemeralDatabase | undefined =
    DATABASE === 'MONGODB_URI' ? undefined : await startEphemeralDatabase({ database: DATABASE, log: (l) => say(l) });
  const uri = process.env.MONGODB_URI ?? db!.uri;
  const secrets = {
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    VERIFY_TOKENS: `vt_${randomBytes(24).toString('base64url')}`,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
  };
  const env = {
    ...secrets,
    MONGODB_URI: uri,
    MONGODB_DATABASE: DB_NAME,
    LOG_LEVEL: 'warn',
    MONGODB_OPERATION_TIMEOUT_MS: String(DEADLINE_MS),
  };
  const mongo = await MongoClient.connect(uri);
  await mongo.db(DB_NAME).dropDatabase();
  const c = collectionsOf(mongo.db(DB_NAME));
  let svc: ServiceProcess | undefined;
  let results: Document | undefined;
  try {
    svc = await startServiceProcess(env); // creates the indexes
    const clients = connectClients(`127.0.0.1:${svc.port}`);
    const service = bearer(secrets.VERIFY_TOKENS);
    const now = new Date();
    const templateAdmin = bearer(
      await mintUserToken(secrets.AUTH_JWT_SECRET, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }, '12h'),
    );
    const template = await clients.keys.createKey({ name: 'scale', scopes: ['read', 'write'], metadata: { team: 'scale' } }, templateAdmin);
    const model = (await c.keys.findOne({ _id: template.key!.id }))!;
    const ds = new Dataset(c, model, now);
    // One cap for both measured organizations: only the number of keys they hold differs.
    const cap = 10 * Math.max(...SIZES);
    await c.organizations.insertMany([ds.bigOrg, ds.referenceOrg].map((_id) => ({ _id, key_limit: cap, created_at: now })));
    const adminOf = async (orgId: string) =>
      bearer(await mintUserToken(secrets.AUTH_JWT_SECRET, { sub: newId('usr'), orgId, role: 'admin' }, '12h'));
    const admin = await adminOf(ds.bigOrg);
    const referenceAdmin = await adminOf(ds.referenceOrg);
    const opts = () => ({ deadline: Date.now() + DEADLINE_MS });
    const timed = async (call: () => Promise<unknown>) => {
      const started = performance.now();
      await call();
      return performance.now() - started;
    };

    for (const size of SIZES) {
      say(`storing keys until the big organization holds ${size} live keys (inserts of ${MAX_DOCUMENTS_PER_WRITE})…`);
      const loadStarted = Date.now();
      await ds.growTo(size);
      const loadSeconds = Math.round((Date.now() - loadStarted) / 1000);
      const liveIn = (orgId: string) => c.keys.countDocuments({ org_id: orgId, status: 'active' });
      const live = await liveIn(ds.bigOrg);
      const referenceLive = await liveIn(ds.referenceOrg);
      say(
        `${ds.stored} keys stored in ${loadSeconds} s; live keys: ${live} in the big organization, ${referenceLive} in the other measured one`,
      );

      // The walk to the deep page, timing every page.
      const lastPage = Math.ceil(live / PAGE_SIZE);
      const deepPage = live >= DEEP_PAGE * PAGE_SIZE ? DEEP_PAGE : lastPage;
      let deepToken = '';
      const walk: number[] = [];
      if (!SKIP.has('list deep page')) {
        say(`walking to page ${deepPage}…`);
        let token = '';
        for (let p = 1; p < deepPage; p++) {
          let next = '';
          walk.push(
            await timed(
              async () => (next = (await clients.keys.listKeys({ pageSize: PAGE_SIZE, pageToken: token }, admin, opts())).nextPageToken),
            ),
          );
          token = next;
          if (p % 50 === 0) say(`  page ${p}, ${Math.round(walk[walk.length - 1])} ms`);
        }
        deepToken = token;
      }

      const calls: Record<Measurement, () => Promise<void>> = {
        'verify cold': async () => {
          const r = await clients.verify.verifyKey({ key: ds.unverified.pop()! }, service, opts());
          if (r.code !== VerifyCode.VERIFY_CODE_VALID) throw new Error(`verify answered ${VerifyCode[r.code]}`);
        },
        create: async () => {
          await clients.keys.createKey({ name: 'scale create', scopes: ['read'] }, admin, opts());
        },
        'create (100-key org)': async () => {
          await clients.keys.createKey({ name: 'scale create', scopes: ['read'] }, referenceAdmin, opts());
        },
        'list page 1': async () => {
          const r = await clients.keys.listKeys({ pageSize: PAGE_SIZE }, admin, opts());
          if (r.keys.length !== Math.min(PAGE_SIZE, live)) throw new Error(`page 1 has ${r.keys.length} keys`);
        },
        'list deep page': async () => {
          const r = await clients.keys.listKeys({ pageSize: PAGE_SIZE, pageToken: deepToken }, admin, opts());
          if (r.keys.length === 0) throw new Error(`page ${deepPage} is empty`);
        },
        unused_since: async () => {
          const r = await clients.keys.listKeys({ pageSize: PAGE_SIZE, unusedSince: new Date(Date.now() - 30 * DAY_MS) }, admin, opts());
          if (r.keys.length === 0) throw new Error('unused_since found no key');
        },
      };
      const measured = MEASUREMENTS.filter((m) => !SKIP.has(m));
      const latencies = Object.fromEntries(measured.map((m) => [m, [] as number[]])) as Record<Measurement, number[]>;
      say(`measuring ${measured.join(', ')}: a warm-up round, then ${SAMPLES} rounds…`);
      const loadBefore = loadavg()[0];
      // The warm-up round (-1) is measured like the others and thrown away.
      for (let round = -1; round < SAMPLES; round++) {
        for (let i = 0; i < measured.length; i++) {
          const m = measured[(round + 1 + i) % measured.length];
          const ms = await timed(calls[m]);
          if (round >= 0) latencies[m].push(ms);
        }
        if (round >= 0) say(`  round ${round + 1}: ${measured.map((m) => `${m} ${Math.round(latencies[m][round])} ms`).join(', ')}`);
      }
      const summaries = Object.fromEntries(measured.map((m) => [m, summarize(latencies[m])]));
      const roundRatios = Object.fromEntries(
        Object.entries(ROUND_RATIOS)
          .filter(([, [a, b]]) => latencies[a] && latencies[b])
          .map(([name, [a, b]]) => [
            name,
            summarize(
              latencies[a].map((ms, i) => ms / latencies[b][i]),
              100,
            ),
          ]),
      );
      const queries = await databaseQueries(c, ds, cap);
      const entry = {
        at: new Date().toISOString(),
        samples: SAMPLES,
        skipped: [...SKIP],
        keys: size,
        bigOrgLiveKeys: live,
        referenceOrgLiveKeys: referenceLive,
        loadSeconds,
        deepPage,
        // The machine's 1-minute load average before and after the rounds: other work on it shows here.
        loadAverage: [loadBefore, loadavg()[0]].map((l) => Math.round(l * 10) / 10),
        walkMs:
          walk.length > 0
            ? { pages: walk.length, all: summarize(walk), first10: summarize(walk.slice(0, 10)), last10: summarize(walk.slice(-10)) }
            : null,
        latencyMs: summaries,
        // Within each round, then over the rounds: p50 is their median, min and max the spread.
        roundRatios,
        databaseQueries: queries,
      };
      results = record(db?.description ?? 'MONGODB_URI', entry);
      say(`${size} keys: ${JSON.stringify(summaries)}`);
      for (const [name, r] of Object.entries(roundRatios)) say(`  ${name}, per round: median ${r.p50} (${r.min}–${r.max})`);
      for (const [name, q] of Object.entries(queries)) say(`  query ${name}: p50 ${q.ms.p50} ms; ${JSON.stringify(q.plan)}`);
    }
    clients.close();
  } catch (err) {
    const code = (err as ServiceError).code;
    throw code !== undefined ? new Error(`${status[code]}: ${(err as Error).message}`) : err;
  } finally {
    svc?.kill();
    await mongo.close();
    await db?.stop();
  }

  const table = Object.values(results!.sizes as Record<string, Document>).sort((a, b) => a.keys - b.keys);
  say('| keys | call | p50 ms | p90 ms | n |');
  say('|---|---|---|---|---|');
  for (const t of table)
    for (const [m, v] of Object.entries(t.latencyMs as Record<string, Summary>)) say(`| ${t.keys} | ${m} | ${v.p50} | ${v.p90} | ${v.n} |`);
  say(`ratios of medians: ${JSON.stringify(results!.ratiosOfMedians)}`);
  for (const t of table)
    for (const [name, r] of Object.entries(t.roundRatios as Record<string, Summary>))
      say(`${t.keys}: ${name}, per round: median ${r.p50} (${r.min}–${r.max}) over ${r.n} rounds`);
  say(`written to ${RESULTS}`);
}

/**
 * Adds one size's figures to the results file, where they stay per database and size across runs
 * (a run of the largest size alone completes an earlier one), and recomputes the ratios of the
 * medians to the smallest size.
 */
function record(description: string, entry: Document): Document {
  const all = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, Document>) : {};
  const mine = all[DATABASE] ?? { sizes: {} };
  mine.database = description;
  mine.sizes[entry.keys] = entry;
  const [base, ...larger] = Object.values(mine.sizes as Record<string, Document>).sort((a, b) => a.keys - b.keys);
  mine.ratiosOfMedians = Object.fromEntries(
    larger.map((s) => [
      `${s.keys}/${base.keys}`,
      Object.fromEntries(
        Object.keys(s.latencyMs)
          .filter((m) => base.latencyMs[m])
          .map((m) => [m, Math.round((s.latencyMs[m].p50 / base.latencyMs[m].p50) * 10) / 10]),
      ),
    ]),
  );
  all[DATABASE] = mine;
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(all, null, 2));
  return mine;
}

void main().catch((err: unknown) => {
  process.stderr.write(`[scale] ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
