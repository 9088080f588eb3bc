// Starts the real service (real gRPC server on an ephemeral port, real database) for one test file.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { startApp, type RunningApp } from '../../src/app';
import { bearer, connectClients, type ApiKeysClients } from '../../src/client/promiseClient';
import { loadConfig, type Config } from '../../src/config/config';
import { mintUserToken, type UserClaims } from '../../src/dev/tokens';
import { newId } from '../../src/domain/ids';
import { createLogger } from '../../src/logging/logger';
import { collectionsOf, type Collections } from '../../src/storage/mongo';
import { testDb, type TestDatabase } from './database';

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
  userToken(claims?: Partial<UserClaims>, ttl?: string | number): Promise<string>;
  /** Metadata for a new admin of `orgId` (a new organization when omitted). */
  admin(orgId?: string): Promise<{ orgId: string; metadata: ReturnType<typeof bearer> }>;
  verifyToken: string;
  stop(): Promise<void>;
}

export async function startTestServer(
  name: string,
  env: Record<string, string> = {},
  options: { databaseUri?: string } = {},
): Promise<TestServer> {
  const db = await testDb(name, options.databaseUri);
  const jwtSecret = randomBytes(32).toString('base64url');
  const verifyToken = `vt_${randomBytes(24).toString('base64url')}`;
  const config = loadConfig({
    GRPC_ADDR: '127.0.0.1:0',
    MONGODB_URI: db.uri,
    MONGODB_DATABASE: db.dbName,
    AUTH_JWT_SECRET: jwtSecret,
    VERIFY_TOKENS: verifyToken,
    STAFF_EMAIL_DOMAINS: 'staff.example',
    PAGE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'info',
    // Loopback, ephemeral port: several test servers run at once (RunningApp.metricsPort).
    METRICS_ADDR: '127.0.0.1:0',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const app = await startApp(config, createLogger('info', { destination: sink }));
  const address = `127.0.0.1:${app.port}`;
  const clients = connectClients(address);
  const userToken = (claims: Partial<UserClaims> = {}, ttl: string | number = '1h') =>
    mintUserToken(jwtSecret, { sub: newId('usr'), orgId: newId('org'), role: 'admin', ...claims }, ttl);
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
    verifyToken,
    async stop() {
      clients.close();
      await app.stop();
      await db.drop();
      await db.close();
    },
  };
}

/** Rejection of a gRPC call → its code and ErrorInfo/BadRequest details. */
export { decodeStatusDetails } from '../../src/transport/errors';
