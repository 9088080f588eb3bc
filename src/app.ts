import type { Server } from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadUserTokenKeys } from './auth/jwtKeys';
import type { Config } from './config/config';
import { AuditLog } from './domain/audit';
import { AuthFailureLimiter } from './domain/authFailureLimiter';
import { Authenticator } from './domain/authentication';
import { Periodic } from './domain/background';
import { ChangeFeed } from './domain/changeFeed';
import { invalidationTask } from './domain/freshness';
import { KeyCache } from './domain/keyCache';
import { KeyImporter } from './domain/keyImport';
import { KeyManager } from './domain/keys';
import { LeakResponse } from './domain/leakResponse';
import { Organizations } from './domain/organizations';
import type { KeyChange, StoredKey } from './domain/model';
import { KeyUsageReader, oldUsageAttributionTask } from './domain/keyUsage';
import { RateLimiter } from './domain/rateLimiter';
import { SecretBox } from './domain/secretBox';
import { retentionSweepTask } from './domain/retention';
import { UsageRecorder, usageFlushTask } from './domain/usageRecorder';
import { UsageReports } from './domain/usageReports';
import type { KeyLookup } from './domain/ports';
import { Verifier } from './domain/verification';
import { batchedLogger, type Logger } from './logging/logger';
import { Metrics, serveMetrics, type MetricsEndpoint } from './observability/metrics';
import { StorageHealthMonitor } from './observability/storageHealth';
import { AuditRepository } from './storage/auditRepository';
import { ChangeLogRepository } from './storage/changeLogRepository';
import { CreateRequestRepository } from './storage/createRequestRepository';
import { KeyRepository } from './storage/keyRepository';
import { connectStorage, QueryLimits, type Storage } from './storage/mongo';
import { OrganizationRepository } from './storage/organizationRepository';
import { RateCounterRepository } from './storage/rateCounterRepository';
import { RetentionRepository } from './storage/retentionRepository';
import { SlotRepository } from './storage/slotRepository';
import { UsageRepository } from './storage/usageRepository';
import { currentCall } from './transport/callScope';
import { serveForwardAuth, type ForwardAuthEndpoint } from './transport/http/forwardAuth';
import { bind, buildServer, SERVICE_NAMES } from './transport/server';
import type { LeanPath } from './transport/leanUnary';
import { shutdownGracefully } from './transport/shutdown';

export interface RunningApp {
  /** The bound port (useful when GRPC_ADDR asks for port 0). */
  port: number;
  server: Server;
  storage: Storage;
  /** This instance's metrics (its own prom-client Registry). */
  metrics: Metrics;
  /** The bound port of /metrics; undefined when METRICS_ADDR=off. */
  metricsPort?: number;
  /** The bound port of the forward-auth endpoint; undefined when HTTP_AUTH_ADDR is off. */
  httpAuthPort?: number;
  /** VerifyKey's lean way through HTTP/2: whether it is on, and how many calls took it. */
  lean: LeanPath;
  /** Health NOT_SERVING, drain calls (SHUTDOWN_GRACE_MS), final usage flush, close MongoDB. Idempotent. */
  stop(): Promise<void>;
}

function pageTokenKey(config: Config, logger: Logger): Buffer {
  if (config.pageTokenSecret) return createHash('sha256').update(config.pageTokenSecret).digest();
  logger.warn('PAGE_TOKEN_SECRET is not set: page tokens are valid on this instance only, until it restarts');
  return randomBytes(32);
}

export interface StartOptions {
  /** Registers extra services on the same server before it binds (the benchmark's empty handler). */
  beforeBind?: (server: Server) => void;
  /** Tests only: wraps Verify's storage lookup (e.g. to make it slow). */
  wrapKeyLookup?: (lookup: KeyLookup) => KeyLookup;
}

/** Wires config → storage → domain → transport and starts serving. */
export async function startApp(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningApp> {
  const now = () => new Date();
  const storage = await connectStorage(
    config.mongodbUri,
    config.mongodbDatabase,
    { connectMs: config.mongodbTimeoutMs, operationMs: config.mongodbOperationTimeoutMs },
    currentCall,
    logger,
  );
  const metrics = new Metrics();
  metrics.observeMongo(storage.client);
  const keyRepo = new KeyRepository(storage.collections, storage.limits);
  const cache = new KeyCache({
    maxEntries: config.verify.cacheMaxEntries,
    ttlMs: config.verify.cacheTtlMs,
    negativeMaxEntries: config.verify.negativeCacheMaxEntries,
    negativeTtlMs: config.verify.negativeTtlMs,
  });
  metrics.observeCache(cache);
  const usage = new UsageRecorder();
  const rateLimiter = new RateLimiter({
    store: new RateCounterRepository(
      storage.collections.rateCounters,
      // Unique per start: a restarted process must not take over the counts its predecessor wrote.
      `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
      new QueryLimits(config.mongodbOperationTimeoutMs),
    ),
    now: () => now().getTime(),
    syncIntervalMs: config.verify.rateLimitSyncMs,
    exchangeTimeoutMs: config.mongodbTimeoutMs,
    logger,
  });
  metrics.observeRateLimiter(rateLimiter);
  const lookup: KeyLookup = (h) => keyRepo.findByHash(h);
  const verifier = new Verifier({
    keyPrefix: config.keyPrefix,
    foreignFormats: config.foreignKeyFormats,
    findByHash: options.wrapKeyLookup?.(lookup) ?? lookup,
    nowMs: Date.now,
    cache,
    usage,
    rateLimiter,
    revocationBoundMs: config.verify.revocationBoundMs,
    announcementTtlMs: config.verify.cacheTtlMs,
    maxConcurrentReads: config.verify.maxConcurrentReads,
  });
  metrics.observeVerifier(verifier);
  const tokenKey = pageTokenKey(config, logger);
  // A change that happened is answered as success; what failed after it reaches operators here.
  const reportFollowUp = (what: string, err: unknown) => {
    metrics.followUpFailed(what);
    logger.error({ what, err: { name: (err as Error).name, message: (err as Error).message } }, 'work after a completed change failed');
  };
  const audit = new AuditLog(new AuditRepository(storage.collections.audit, storage.limits), now, tokenKey, reportFollowUp);
  const changeLog = new ChangeLogRepository(storage.collections.changes, storage.limits);
  const feed = new ChangeFeed({
    changeLog,
    now,
    retentionMs: config.retention.keyChangeSeconds * 1000,
    pollIntervalMs: config.verify.invalidationPollMs,
    maxPending: config.verify.watchMaxPendingEvents,
  });
  metrics.observeFeed(feed);
  const slots = new SlotRepository(storage.collections, storage.limits);
  const organizations = new OrganizationRepository(storage.collections.organizations, storage.limits);
  // What every way of adding or changing a key shares: the cap, the audit trail, the change log, the caches.
  const keyWrites = {
    slots,
    organizations,
    now,
    orgKeyLimit: config.orgKeyLimit,
    audit,
    changeLog,
    onKeyChanged: (doc: StoredKey, change: KeyChange) => {
      verifier.evict(doc.hash);
      feed.published(change);
    },
    onFollowUpFailed: reportFollowUp,
  };
  const keys = new KeyManager({
    ...keyWrites,
    keys: keyRepo,
    keyPrefix: config.keyPrefix,
    pageTokenKey: tokenKey,
    createRequests: new CreateRequestRepository(storage.collections.createRequests, storage.limits),
    secretBox: config.secrets.encryptionKey && new SecretBox(config.secrets.encryptionKey, config.secrets.decryptionKeys),
    rotation: config.rotation,
    idempotencyWindowSeconds: config.idempotencyWindowSeconds,
  });
  const orgLeak = {
    organizations: new Organizations({ limits: organizations, slots, audit, now, defaultKeyLimit: config.orgKeyLimit }),
    leaks: new LeakResponse({ keys: keyRepo, lookupHash: (secret) => verifier.lookupHash(secret), revoker: keys, audit, now }),
  };
  // Names this process in the usage counts it writes: each count has one writer (UsageRepository).
  const usageStore = new UsageRepository(storage.collections, randomBytes(9).toString('base64url'), storage.limits);
  const keyUsage = new KeyUsageReader({ keys: keyRepo, usage: usageStore, audit, now });
  const importer = new KeyImporter({ ...keyWrites, keys: keyRepo, formats: config.foreignKeyFormats, usage: usageStore });
  const authFailures = new AuthFailureLimiter({ ...config.authFailures, now: () => now().getTime() });
  const authenticator = new Authenticator(
    {
      keyPrefix: config.keyPrefix,
      foreignFormats: config.foreignKeyFormats,
      ...config.auth,
      userTokenKeys: loadUserTokenKeys(config.auth),
    },
    verifier,
    authFailures,
  );
  const background = [
    new Periodic(
      'invalidation',
      config.verify.invalidationPollMs,
      invalidationTask({ changeLog, verifier, now, revocationBoundMs: config.verify.revocationBoundMs, logger, feed }),
      logger,
    ),
    new Periodic(
      'usage-flush',
      config.verify.usageFlushIntervalMs,
      metrics.observeUsageFlush(() => usage.pending, usageFlushTask(usageStore, usage)),
      logger,
    ),
    new Periodic('rate-limit-sync', config.verify.rateLimitSyncMs, () => rateLimiter.sync(), logger),
    new Periodic(
      'retention-sweep',
      config.retention.sweepIntervalMs,
      metrics.observeRetentionSweep(
        retentionSweepTask(
          new RetentionRepository(storage.collections, storage.limits),
          { ...config.retention, idempotencyWindowSeconds: config.idempotencyWindowSeconds },
          now,
          (collection, count) => metrics.retentionDeleted(collection, count),
        ),
      ),
      logger,
    ),
    new Periodic('usage-attribution', config.retention.sweepIntervalMs, oldUsageAttributionTask(usageStore, now), logger),
  ];
  const usageReports = new UsageReports({ keys: keyRepo, usage, now });
  const sampledLines = batchedLogger(logger);
  const assembled = buildServer({
    authenticator,
    keys,
    orgLeak,
    importer,
    audit,
    verifier,
    feed,
    usageReports,
    keyUsage,
    logger,
    now,
    limits: config.grpc,
    accessLog: config.accessLog,
    sampledLog: sampledLines.logger,
    metrics,
  });
  const { server, health } = assembled;
  options.beforeBind?.(server);
  const setHealth = (s: 'SERVING' | 'NOT_SERVING') => {
    for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, s);
  };
  let metricsEndpoint: MetricsEndpoint | undefined;
  let forwardAuth: ForwardAuthEndpoint | undefined;
  let port: number;
  let lean: LeanPath;
  try {
    if (config.metricsAddr) metricsEndpoint = await serveMetrics(metrics, config.metricsAddr, logger);
    if (config.httpAuthAddr)
      forwardAuth = await serveForwardAuth(
        { verifier, authenticator, metrics, logger },
        config.httpAuthAddr,
        config.httpAuthMaxConnections,
      );
    ({ port, lean } = await bind(assembled, config.grpcAddr));
  } catch (err) {
    sampledLines.close();
    await forwardAuth?.close(0);
    await metricsEndpoint?.close();
    await storage.close();
    throw err;
  }
  // Health follows MongoDB: NOT_SERVING while a ping fails, SERVING again once one succeeds.
  const storageHealth = new StorageHealthMonitor({
    ping: async () => {
      await storage.db.command({ ping: 1 }, { timeoutMS: config.mongodbTimeoutMs });
    },
    intervalMs: config.healthCheckIntervalMs,
    onChange: (reachable) => setHealth(reachable ? 'SERVING' : 'NOT_SERVING'),
    logger,
  });
  metrics.observeStorage(storageHealth);
  background.forEach((b) => b.start());
  storageHealth.start();
  setHealth('SERVING');
  logger.info({ addr: config.grpcAddr, port, leanVerify: lean.active }, 'apikeys listening');
  if (config.grpc.leanVerify && !lean.active) {
    logger.warn(
      "GRPC_LEAN_VERIFY is on but this grpc-js version's server is not the one it was written for: VerifyKey takes grpc-js's own way",
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    server,
    storage,
    metrics,
    metricsPort: metricsEndpoint?.port,
    httpAuthPort: forwardAuth?.port,
    lean,
    stop() {
      stopping ??= (async () => {
        // stop() flags the monitor at once (it can no longer turn health back to SERVING);
        // a ping in flight is awaited later, so it does not delay NOT_SERVING or the drain.
        const monitorStopped = storageHealth.stop();
        setHealth('NOT_SERVING');
        // Watch streams never end by themselves: ended now, they do not hold the drain for the whole grace.
        feed.close();
        const [ended] = await Promise.all([
          shutdownGracefully(server, config.shutdownGraceMs, logger),
          forwardAuth?.close(config.shutdownGraceMs),
        ]);
        await monitorStopped;
        sampledLines.close(); // no call is left to log
        // In-flight calls are done: stop polling, then write the last usage batch.
        const [invalidation, usageFlush, rateLimitSync, retention, attribution] = background;
        await invalidation.stop({ finalRun: false });
        await retention.stop({ finalRun: false });
        await attribution.stop({ finalRun: false });
        await usageFlush.stop({ finalRun: true });
        // Reserves go back, so the other instances may use them in this window.
        await rateLimitSync.stop({ finalRun: false });
        await rateLimiter.close();
        await metricsEndpoint?.close();
        await storage.close();
        logger.info({ calls: ended }, 'apikeys stopped');
      })();
      return stopping;
    },
  };
}
