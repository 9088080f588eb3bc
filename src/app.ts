import type { Server } from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import type { Config } from './config/config';
import { Authenticator } from './domain/authentication';
import { Periodic } from './domain/background';
import { invalidationTask, usageFlushTask } from './domain/freshness';
import { KeyCache } from './domain/keyCache';
import { KeyManager } from './domain/keys';
import { RateLimiter } from './domain/rateLimiter';
import { UsageRecorder } from './domain/usageRecorder';
import { Verifier } from './domain/verification';
import type { Logger } from './logging/logger';
import { KeyRepository } from './storage/keyRepository';
import { connectStorage, type Storage } from './storage/mongo';
import { OrganizationRepository } from './storage/organizationRepository';
import { SlotRepository } from './storage/slotRepository';
import { bind, buildServer, SERVICE_NAMES } from './transport/server';

export interface RunningApp {
  /** The bound port (useful when GRPC_ADDR asks for port 0). */
  port: number;
  server: Server;
  storage: Storage;
  stop(): Promise<void>;
}

function pageTokenKey(config: Config, logger: Logger): Buffer {
  if (config.pageTokenSecret) return createHash('sha256').update(config.pageTokenSecret).digest();
  logger.warn('PAGE_TOKEN_SECRET is not set: page tokens are valid on this instance only, until it restarts');
  return randomBytes(32);
}

/** Wires config → storage → domain → transport and starts serving. */
export interface StartOptions {
  /** Registers extra services on the same server before it binds (the benchmark's empty handler). */
  beforeBind?: (server: Server) => void;
}

export async function startApp(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningApp> {
  const now = () => new Date();
  const storage = await connectStorage(config.mongodbUri, config.mongodbDatabase, config.mongodbTimeoutMs, logger);
  const keyRepo = new KeyRepository(storage.collections.keys, storage.collections.usage);
  const cache = new KeyCache({
    maxEntries: config.verify.cacheMaxEntries,
    ttlMs: config.verify.cacheTtlMs,
    negativeTtlMs: config.verify.negativeTtlMs,
    staleWindowMs: config.verify.staleWindowMs,
  });
  const usage = new UsageRecorder();
  const rateLimiter = new RateLimiter();
  const verifier = new Verifier({
    keyPrefix: config.keyPrefix,
    findByHash: (h) => keyRepo.findByHash(h),
    now,
    cache,
    usage,
    rateLimiter,
  });
  const keys = new KeyManager({
    keys: keyRepo,
    slots: new SlotRepository(storage.collections.slots, storage.collections.keys),
    organizations: new OrganizationRepository(storage.collections.organizations),
    now,
    keyPrefix: config.keyPrefix,
    orgKeyLimit: config.orgKeyLimit,
    pageTokenKey: pageTokenKey(config, logger),
    onKeyChanged: (doc) => verifier.evict(doc.hash),
  });
  const authenticator = new Authenticator({ keyPrefix: config.keyPrefix, ...config.auth }, verifier);
  const background = [
    new Periodic('invalidation', config.verify.invalidationPollMs, invalidationTask(keyRepo, cache, now), logger),
    new Periodic('usage-flush', config.verify.usageFlushIntervalMs, usageFlushTask(keyRepo, usage, rateLimiter, now), logger),
  ];
  const { server, health } = buildServer({ authenticator, keys, verifier, logger, now });
  options.beforeBind?.(server);
  const port = await bind(server, config.grpcAddr);
  background.forEach((b) => b.start());
  for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'SERVING');
  logger.info({ addr: config.grpcAddr, port }, 'apikeys listening');

  return {
    port,
    server,
    storage,
    async stop() {
      for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'NOT_SERVING');
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      // In-flight calls are done: stop polling, then write the last usage batch.
      const [invalidation, usageFlush] = background;
      await invalidation.stop({ finalRun: false });
      await usageFlush.stop({ finalRun: true });
      await storage.close();
    },
  };
}
