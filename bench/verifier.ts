/**
 * What KeyVerifier (src/client/verifier.ts) buys a service, measured against the real service:
 * two instances (src/main.ts, each its own process) on one ephemeral FerretDB.
 *
 * 1. Throughput and latency: KeyVerifier.verify of a cached key, in this process, one call after
 *    another (one core), side by side with VerifyKey over the network through the same client's
 *    gRPC client (CONCURRENCY calls in flight); ROUNDS interleaved rounds, medians and spread.
 * 2. Change propagation: for CHANGES keys each, the time from RevokeKey's answer to the moment
 *    the subscribed client evicts the key (its feed names it), when the client watches the
 *    instance the revoke went through, and when it watches the other one.
 *
 * Run: npx tsx bench/verifier.ts   (ROUNDS, LOCAL_CALLS, NETWORK_MS, CONCURRENCY, CHANGES to change the defaults)
 */
import { bearer, connectClients } from '../src/client/promiseClient';
import { KeyVerifier, type FeedNotice } from '../src/client/verifier';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { VerifyCode } from '../src/gen/apikeys/v1/verify_service';
import { startServiceProcess, type ServiceProcess } from '../test/support/serviceProcess';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const LOCAL_CALLS = Number(process.env.LOCAL_CALLS ?? 300_000);
const NETWORK_MS = Number(process.env.NETWORK_MS ?? 3_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const CHANGES = Number(process.env.CHANGES ?? 500);
/** The instances' INVALIDATION_POLL_MS (the default). */
const POLL_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`[verifier] ${s}\n`);

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;

interface Round {
  perSecond: number;
  p50us: number;
  p99us: number;
}

function summarise(latenciesUs: number[], calls: number, elapsedMs: number): Round {
  const sorted = latenciesUs.sort((a, b) => a - b);
  return { perSecond: (calls / elapsedMs) * 1000, p50us: quantile(sorted, 0.5), p99us: quantile(sorted, 0.99) };
}

/** LOCAL_CALLS verifications of a cached key, one after another, each timed. */
async function localRound(verifier: KeyVerifier, secret: string): Promise<Round> {
  const latencies = new Array<number>(LOCAL_CALLS);
  const started = performance.now();
  for (let i = 0; i < LOCAL_CALLS; i++) {
    const t = process.hrtime.bigint();
    const r = await verifier.verify(secret, ['read']);
    latencies[i] = Number(process.hrtime.bigint() - t) / 1000;
    if (!r.valid) throw new Error(`expected VALID, got ${r.code}`);
  }
  return summarise(latencies, LOCAL_CALLS, performance.now() - started);
}

/** VerifyKey through the verifier's own gRPC client, CONCURRENCY in flight, for NETWORK_MS. */
async function networkRound(verifier: KeyVerifier, secret: string, token: string): Promise<Round> {
  const latencies: number[] = [];
  const metadata = bearer(token);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const t = process.hrtime.bigint();
      verifier.grpc.verifyKey({ key: secret, requiredScopes: ['read'] }, metadata, (err, res) => {
        if (err) reject(err);
        else if (res.code !== VerifyCode.VERIFY_CODE_VALID) reject(new Error(`expected VALID, got ${res.code}`));
        else {
          latencies.push(Number(process.hrtime.bigint() - t) / 1000);
          resolve();
        }
      });
    });
  const started = performance.now();
  const end = started + NETWORK_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  return summarise(latencies, latencies.length, performance.now() - started);
}

void (async () => {
  const db = await startEphemeralDatabase();
  const services: ServiceProcess[] = [];
  const verifiers: KeyVerifier[] = [];
  try {
    const env = { MONGODB_URI: db.uri, MONGODB_DATABASE: 'bench_verifier', ORG_KEY_LIMIT: '100000', LOG_LEVEL: 'warn' };
    const a = await startServiceProcess(env);
    services.push(a);
    const b = await startServiceProcess({ ...env, AUTH_JWT_SECRET: a.jwtSecret, VERIFY_TOKENS: a.verifyToken });
    services.push(b);
    const [addrA, addrB] = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
    const clients = connectClients(addrA);
    const admin = bearer(await mintUserToken(a.jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }, '2h'));

    /** Eviction times by key id, per verifier. */
    const evictedAt = new Map<KeyVerifier, Map<string, number>>();
    const watching = async (address: string) => {
      const evictions = new Map<string, number>();
      let heartbeats = 0;
      const v = new KeyVerifier({
        address,
        token: a.verifyToken,
        onFeed: (n: FeedNotice) => {
          // Creations drop only a cached "no such key": the eviction measured is the revoke's.
          if (n.type === 'change' && n.kind !== 'created') evictions.set(n.keyId, performance.now());
          else if (n.type === 'heartbeat') heartbeats++;
        },
      });
      verifiers.push(v);
      evictedAt.set(v, evictions);
      while (heartbeats === 0) await sleep(10);
      return v;
    };

    // ---- 1. in process vs over the network ----
    const verifier = await watching(addrA);
    const { secret } = await clients.keys.createKey({ name: 'bench', scopes: ['read', 'write'] }, admin);
    await verifier.verify(secret, ['read']);
    const local: Round[] = [];
    const network: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      local.push(await localRound(verifier, secret));
      network.push(await networkRound(verifier, secret, a.verifyToken));
      say(
        `round ${r + 1}: in process ${Math.round(local[r].perSecond)}/s p50 ${local[r].p50us.toFixed(1)} µs p99 ${local[r].p99us.toFixed(1)} µs; ` +
          `network ${Math.round(network[r].perSecond)}/s p50 ${network[r].p50us.toFixed(0)} µs p99 ${network[r].p99us.toFixed(0)} µs`,
      );
    }
    const row = (label: string, rounds: Round[]) =>
      `| ${label} | ${Math.round(median(rounds.map((x) => x.perSecond)))} (${spread(rounds.map((x) => x.perSecond / 1000))} k) | ` +
      `${median(rounds.map((x) => x.p50us)).toFixed(1)} (${spread(rounds.map((x) => x.p50us))}) | ` +
      `${median(rounds.map((x) => x.p99us)).toFixed(1)} (${spread(rounds.map((x) => x.p99us))}) |`;
    say(`${ROUNDS} rounds, medians (min–max):`);
    process.stdout.write(
      [
        '| path | verifications/s | p50 µs | p99 µs |',
        '|---|---|---|---|',
        row('KeyVerifier.verify, cached', local),
        row(`VerifyKey over the network (${CONCURRENCY} in flight)`, network),
      ].join('\n') + '\n',
    );
    const ratios = local.map((l, i) => l.perSecond / network[i].perSecond);
    say(
      `in process ÷ network, per round: median ${median(ratios).toFixed(0)}× (${spread(ratios)}×); remote calls made by the verifier: ${verifier.stats.remote}`,
    );

    // ---- 2. change propagation ----
    const propagation = async (label: string, watcherAddress: string) => {
      const watcher = await watching(watcherAddress);
      const evictions = evictedAt.get(watcher)!;
      const afterAnswer: number[] = [];
      const afterRequest: number[] = [];
      let beforeAnswer = 0;
      for (let i = 0; i < CHANGES; i++) {
        const { key, secret: s } = await clients.keys.createKey({ name: `change ${i}`, scopes: ['read'] }, admin);
        if (!(await watcher.verify(s)).valid) throw new Error('a new key does not verify');
        // Waiting for each eviction locks the loop to the watched instance's poll: land each revoke anywhere in its cycle.
        await sleep(Math.random() * POLL_MS);
        const sentAt = performance.now();
        await clients.keys.revokeKey({ id: key!.id }, admin);
        const answeredAt = performance.now();
        while (!evictions.has(key!.id)) {
          if (performance.now() - answeredAt > 10_000) throw new Error(`no eviction of ${key!.id} within 10 s`);
          await sleep(1);
        }
        const at = evictions.get(key!.id)!;
        if (at < answeredAt) beforeAnswer++;
        afterAnswer.push(Math.max(0, at - answeredAt));
        afterRequest.push(at - sentAt);
        const code = (await watcher.verify(s)).code;
        if (code !== 'REVOKED') throw new Error(`the evicted key answers ${code}`);
      }
      const describe = (xs: number[]) => {
        const sorted = [...xs].sort((x, y) => x - y);
        return `p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`;
      };
      say(
        `${label}: ${CHANGES} revokes; RevokeKey answered → client evicted (0 when the eviction came first): ${describe(afterAnswer)}; ` +
          `RevokeKey sent → evicted: ${describe(afterRequest)}; evicted before the answer arrived: ${beforeAnswer}`,
      );
    };
    await propagation('client watching the instance the revoke went through', addrA);
    await propagation('client watching the other instance', addrB);
    clients.close();
  } finally {
    for (const v of verifiers) await v.close();
    for (const s of services) s.kill();
    await db.stop();
  }
})();
