/**
 * How well a key's rate limit holds across instances: INSTANCES app instances (default settings,
 * RATE_LIMIT_SYNC_MS as set) on one ephemeral database, one key limited to LIMIT per WINDOW_S,
 * CONCURRENCY callers verifying it without pause, each call to the next instance in turn, for
 * WINDOWS whole windows. Prints the VALID answers of each window (told apart by the reset time
 * every answer carries) and what the instances did to hold the limit.
 * Run: npx tsx bench/rateLimit.ts   (INSTANCES, LIMIT, WINDOW_S, WINDOWS, CONCURRENCY, RATE_LIMIT_SYNC_MS)
 */
import { randomBytes } from 'node:crypto';
import { startApp, type RunningApp } from '../src/app';
import { bearer, connectClients } from '../src/client/promiseClient';
import { loadConfig } from '../src/config/config';
import { mintUserToken } from '../src/dev/tokens';
import { startEphemeralDatabase } from '../src/devdb/ephemeralDatabase';
import { newId } from '../src/domain/ids';
import { VerifyCode } from '../src/gen/apikeys/v1/verify_service';
import { createLogger } from '../src/logging/logger';

const INSTANCES = Number(process.env.INSTANCES ?? 3);
const LIMIT = Number(process.env.LIMIT ?? 100);
const WINDOW_S = Number(process.env.WINDOW_S ?? 10);
const WINDOWS = Number(process.env.WINDOWS ?? 6);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 30);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stdout.write(`[rate-limit] ${s}\n`);

void (async () => {
  const db = await startEphemeralDatabase();
  const jwtSecret = randomBytes(32).toString('base64url');
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    MONGODB_URI: db.uri,
    MONGODB_DATABASE: 'bench_rate_limit',
    AUTH_JWT_SECRET: jwtSecret,
    VERIFY_TOKENS: verifyToken,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    METRICS_ADDR: 'off',
    LOG_LEVEL: 'silent',
    ...(process.env.RATE_LIMIT_SYNC_MS ? { RATE_LIMIT_SYNC_MS: process.env.RATE_LIMIT_SYNC_MS } : {}),
  });
  const apps: RunningApp[] = [];
  try {
    for (let i = 0; i < INSTANCES; i++) apps.push(await startApp(config, createLogger('silent')));
    const clients = apps.map((app) => connectClients(`127.0.0.1:${app.port}`));
    const admin = bearer(await mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin' }));
    const { secret } = await clients[0].keys.createKey(
      { name: 'limited', scopes: ['read'], rateLimit: { limit: LIMIT, windowSeconds: WINDOW_S } },
      admin,
    );
    const service = bearer(verifyToken);

    const windowMs = WINDOW_S * 1000;
    await sleep(windowMs - (Date.now() % windowMs));
    const end = Date.now() - (Date.now() % windowMs) + WINDOWS * windowMs;
    say(
      `${INSTANCES} instances, RATE_LIMIT_SYNC_MS ${config.verify.rateLimitSyncMs}, limit ${LIMIT}/${WINDOW_S} s, ${CONCURRENCY} callers, ${WINDOWS} windows…`,
    );
    const perWindow = new Map<number, { valid: number; answers: number }>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (Date.now() < end) {
          const r = await clients[next++ % INSTANCES].verify.verifyKey({ key: secret }, service);
          const resetAt = r.rateLimit!.resetTime!.getTime();
          if (resetAt > end) break; // a window the run does not cover whole
          const w = perWindow.get(resetAt) ?? { valid: 0, answers: 0 };
          w.answers++;
          if (r.code === VerifyCode.VERIFY_CODE_VALID) w.valid++;
          perWindow.set(resetAt, w);
        }
      }),
    );
    const windows = [...perWindow.entries()].sort(([x], [y]) => x - y).map(([, w]) => w);
    say(`VALID per window: ${windows.map((w) => `${w.valid}/${w.answers}`).join(', ')} (VALID/answers)`);
    say(
      `at most ${Math.max(...windows.map((w) => w.valid))} VALID in a window, at least ${Math.min(...windows.map((w) => w.valid))}, over ${windows.length} windows`,
    );
    const value = async (app: RunningApp, name: string, labels: Record<string, string> = {}) => {
      const metric = await app.metrics.registry.getSingleMetric(name)!.get();
      return metric.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
    };
    const exchanges = await Promise.all(
      apps.map(async (app) => {
        const [background, inCall] = await Promise.all(
          ['background', 'verify'].map((path) => value(app, 'apikeys_rate_limit_exchanges_total', { path, outcome: 'ok' })),
        );
        return `${background} / ${inCall}`;
      }),
    );
    say(`exchanges per instance, background / in a VerifyKey call: ${exchanges.join(', ')}`);
    const unconfirmed = await Promise.all(apps.map((app) => value(app, 'apikeys_rate_limit_unconfirmed_total')));
    say(`VALID answers past a confirmed claim, per instance: ${unconfirmed.join(', ')}`);
    for (const c of clients) c.close();
  } finally {
    for (const app of apps) await app.stop();
    await db.stop();
  }
})();
