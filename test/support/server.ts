// Starts the real service (real gRPC server on an ephemeral port, real database) for one test file.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { startApp, type RunningApp, type StartOptions } from '../../src/app';
import { bearer, connectClients, type ApiKeysClients } from '../../src/client/promiseClient';
import { loadConfig, type Config } from '../../src/config/config';
import { mintUserToken, type UserClaims } from '../../src/dev/tokens';
import { newId } from '../../src/domain/ids';
import { createLogger } from '../../src/logging/logger';
import { collectionsOf, type Collections } from '../../src/storage/mongo';
import { privateDatabase, testDb, type PrivateDatabase, type TestDatabase } from './database';
import { watchStorage } from './indexAudit/recorder';

export interface TestServer {
  address: string;
  config: Config;
  app: RunningApp;
  clients: ApiKeysClients;
  db: TestDatabase;
  collections: Collections;
  /** Every log line the server wrote, as text. */
  logs: string[];
  /** A signed user token; defaults: a new admin of a new organization. */
  userToken: (claims?: Partial<UserClaims>, ttl?: string | number) => Promise<string>;
  /** Metadata for a new admin of `orgId` (a new organization when omitted). */
  admin(orgId?: string): Promise<{ orgId: string; metadata: ReturnType<typeof bearer> }>;
  verifyToken: string;
  /** With `ownDatabase`: the database server, to kill and restart. */
  database?: PrivateDatabase;
  stop(): Promise<void>;
}

export interface TestServerOptions extends StartOptions {
  /** A database server of its own instead of the suite's (for a test that kills it); stopped by stop(). */
  ownDatabase?: boolean;
}

/**
 * The service on a new database of `name`, configured like production except for `env`
 * (any variable of src/config/config.ts; LOG_LEVEL also sets what `logs` collects).
 */
export async function startTestServer(
  name: string,
  env: Record<string, string> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const { ownDatabase, ...appOptions } = options;
  const database = ownDatabase ? await privateDatabase() : undefined;
  const secrets = {
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    VERIFY_TOKENS: `vt_${randomBytes(24).toString('base64url')}`,
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
  };
  let server: TestServer;
  try {
    const db = await testDb(name, database?.uri);
    server = await serve(db, secrets, env, appOptions, async () => {
      if (database) {
        // The whole server goes: no need to drop the database first.
        await db.close();
        await database.stop();
      } else {
        await db.drop();
        await db.close();
      }
    });
  } catch (err) {
    await database?.stop();
    throw err;
  }
  return { ...server, database };
}

/** Another instance of `first`'s service: same database and secrets; stopping it leaves both to `first`. */
export function startSecondInstance(first: TestServer, env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const secrets = {
    AUTH_JWT_SECRET: first.config.auth.jwtSecret!,
    VERIFY_TOKENS: first.verifyToken,
    PAGE_TOKEN_SECRET: first.config.pageTokenSecret!,
  };
  return serve(first.db, secrets, env, options, async () => {});
}

async function serve(
  db: TestDatabase,
  secrets: { AUTH_JWT_SECRET: string; VERIFY_TOKENS: string; PAGE_TOKEN_SECRET: string },
  env: Record<string, string>,
  options: StartOptions,
  releaseDb: () => Promise<void>,
): Promise<TestServer> {
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    MONGODB_URI: db.uri,
    MONGODB_DATABASE: db.dbName,
    ...secrets,
    STAFF_EMAIL_DOMAINS: 'staff.example',
    LOG_LEVEL: 'info',
    // Loopback, ephemeral port: several test servers run at once (RunningApp.metricsPort).
    METRICS_ADDR: '127.0.0.1:0',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      // One entry per line: batched lines (the access log's sampled ones) arrive several per write.
      for (const line of String(chunk).split(/(?<=\n)/)) logs.push(line);
      cb();
    },
  });
  const app = await startApp(config, createLogger(config.logLevel, { destination: sink }), options);
  watchStorage(app.storage);
  const address = `127.0.0.1:${app.port}`;
  const clients = connectClients(address);
  const userToken = (claims: Partial<UserClaims> = {}, ttl: string | number = '1h') =>
    mintUserToken(secrets.AUTH_JWT_SECRET, { sub: newId('usr'), orgId: newId('org'), role: 'admin', ...claims }, ttl);
  return {
    address,
    config,
    app,
    clients,
    db,
    collections: collectionsOf(db.db),
    logs,
    userToken,
    async admin(orgId = newId('org')) {
      return { orgId, metadata: bearer(await userToken({ orgId })) };
    },
    verifyToken: secrets.VERIFY_TOKENS,
    async stop() {
      clients.close();
      await app.stop();
      await releaseDb();
    },
  };
}

/** Rejection of a gRPC call → its code and ErrorInfo/BadRequest details. */
export { decodeStatusDetails } from '../../src/client/statusDetails';
