/**
 * What cross-instance invalidation costs and how fast it is, with KEYS keys stored: two app
 * instances (default settings) on one ephemeral FerretDB; the database's CPU while both sit idle
 * (their background polls only); then, over ROUNDS keys B has cached, how long after RevokeKey
 * answered on A B still answered VALID (the promise), and when its first REVOKED arrived (that also
 * includes B's re-read of the key: on FerretDB a findOne by hash scans every key).
 * Run: npx tsx bench/invalidation.ts   (KEYS, ROUNDS, IDLE_SECONDS to change the defaults)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { startApp, type RunningApp } from '../src/app';
import { bearer, connectClients } from '../src/client/promiseClient';
import { loadConfig } from '../src/config/config';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { describeSecret, generateSecret } from '../src/domain/keyFormat';
import { VerifyCode } from '../src/gen/apikeys/v1/verify_service';
import { createLogger } from '../src/logging/logger';

const KEYS = Number(process.env.KEYS ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 10);
/** FerretDB on SQLite locks up on one write touching 100 documents or more. */
const BATCH = 50;
const DATABASE = 'bench_invalidation';
const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`[invalidation] ${s}\n`);

/** The launcher serving `port`, found by its command line (it is our own child). */
function ferretPid(port: string): number {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    })();
    if (cmd[0]?.endsWith('ferretdb-launcher') && cmd.includes(`127.0.0.1:${port}`)) return Number(pid);
  }
  throw new Error(`no ferretdb-launcher listening on port ${port}`);
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A key document in the shape the service stores. */
function keyDocument(orgId: string, createdBy: string, now: Date) {
  const d = describeSecret(generateSecret('sk', 'live'));
  return {
    _id: newId('key'),
    org_id: orgId,
    workspace_id: null,
    name: 'bench',
    scopes: ['read', 'write'],
    environment: 'live' as const,
    hash: d.hash,
    start: d.start,
    masked_key: d.maskedKey,
    fingerprint: d.fingerprint,
    metadata: { team: 'bench', tier: 'pro' },
    created_at: now,
    updated_at: now,
    expires_at: null,
    created_by: createdBy,
    status: 'active' as const,
    revoked_at: null,
    revoked_by: null,
    revoked_comment: null,
    archived_at: null,
    allow_self_revoke: false,
    recoverable: false,
    etag: randomBytes(9).toString('base64url'),
    rotated_from: null,
    replaced_by: null,
    rate_limit: null,
    secret_box: null,
  };
}

void (async () => {
  const db = await startEphemeralDatabase();
  const port = new URL(db.uri).port;
  const pid = ferretPid(port);
  const jwtSecret = randomBytes(32).toString('base64url');
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    MONGODB_URI: db.uri,
    MONGODB_DATABASE: DATABASE,
    AUTH_JWT_SECRET: jwtSecret,
    VERIFY_TOKENS: verifyToken,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    METRICS_ADDR: 'off',
    LOG_LEVEL: 'silent',
  });
  const apps: RunningApp[] = [];
  const client = await MongoClient.connect(db.uri);
  try {
    apps.push(await startApp(config, createLogger('silent'))); // A: creates the indexes
    say(`loading ${KEYS} keys in batches of ${BATCH}…`);
    const keys = client.db(DATABASE).collection<ReturnType<typeof keyDocument>>('api_keys');
    const now = new Date();
    for (let i = 0; i < KEYS; i += BATCH) {
      const orgId = newId('org');
      await keys.insertMany(Array.from({ length: Math.min(BATCH, KEYS - i) }, () => keyDocument(orgId, newId('usr'), now)));
    }
    apps.push(await startApp(config, createLogger('silent'))); // B
    const [a, b] = apps.map((app) => connectClients(`127.0.0.1:${app.port}`));

    await sleep(3_000); // past start-up work
    const cpuBefore = cpuSeconds(pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleCpu = (cpuSeconds(pid) - cpuBefore) / IDLE_SECONDS;
    say(`idle FerretDB CPU with two instances polling: ${(idleCpu * 100).toFixed(1)} % of a core`);

    const admin = bearer(await mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
    const service = bearer(verifyToken);
    const rounds = { cold: [] as number[], lastValid: [] as number[], revoked: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      const { key, secret } = await a.keys.createKey({ name: `round ${r}`, scopes: ['read'] }, admin);
      const coldAt = Date.now();
      for (let i = 0; i < 2; i++) {
        if ((await b.verify.verifyKey({ key: secret }, service)).code !== VerifyCode.VERIFY_CODE_VALID)
          throw new Error('B does not see the new key');
        if (i === 0) rounds.cold.push(Date.now() - coldAt);
      }
      await a.keys.revokeKey({ id: key!.id }, admin);
      const revokedAt = Date.now();
      let lastValid = -1; // none
      for (;;) {
        const sentAt = Date.now();
        if ((await b.verify.verifyKey({ key: secret }, service)).code !== VerifyCode.VERIFY_CODE_VALID) break;
        lastValid = sentAt - revokedAt;
        if (sentAt - revokedAt > 120_000) throw new Error('B still answers VALID 2 minutes after the revoke');
        await sleep(10);
      }
      rounds.revoked.push(Date.now() - revokedAt);
      rounds.lastValid.push(lastValid);
      await sleep(Math.random() * 500); // land the next revoke anywhere in B's poll cycle
    }
    const summary = (xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      return `median ${sorted[sorted.length >> 1]} ms, max ${sorted[sorted.length - 1]} ms`;
    };
    say(`B's last VALID answer sent after A answered the revoke (-1: none): ${summary(rounds.lastValid)} (${rounds.lastValid.join(', ')})`);
    say(`B's first REVOKED answer arrived after: ${summary(rounds.revoked)}`);
    say(`for scale, a cold VerifyKey on B (one findOne by hash): ${summary(rounds.cold)}`);
    a.close();
    b.close();
  } finally {
    for (const app of apps) await app.stop();
    await client.close();
    await db.stop();
  }
})();
