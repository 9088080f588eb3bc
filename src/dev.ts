import { randomBytes } from 'node:crypto';
import { startApp } from './app';
import { loadConfig } from './config/config';
import { startEphemeralDatabase, type EphemeralDatabase } from './devdb/ephemeralDatabase';
import { mintUserToken } from './dev/tokens';
import { newId } from './domain/ids';
import { createLogger } from './logging/logger';

/**
 * Development mode: everything a newcomer needs to call the service at once. Starts an
 * ephemeral MongoDB-compatible server when MONGODB_URI is unset, and makes a JWT secret,
 * an admin token and a Verify token when none are configured.
 */
async function dev(): Promise<void> {
  const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);
  const env = { ...process.env };
  let db: EphemeralDatabase | undefined;
  if (!env.MONGODB_URI) {
    say('MONGODB_URI is not set: starting an ephemeral MongoDB-compatible database (data is discarded on exit)…');
    db = await startEphemeralDatabase({ log: say });
    env.MONGODB_URI = `${db.uri.replace(/\/$/, '')}/apikeys`;
    say(`database: ${db.description}`);
  }
  const generatedSecret = !env.AUTH_JWT_SECRET && !env.AUTH_JWKS ? randomBytes(32).toString('base64url') : undefined;
  if (generatedSecret) env.AUTH_JWT_SECRET = generatedSecret;
  if (!env.VERIFY_TOKENS) env.VERIFY_TOKENS = `vt_${randomBytes(24).toString('base64url')}`;
  // Loopback only: a development instance exposes nothing to the network.
  env.GRPC_ADDR ??= '127.0.0.1:50051';
  env.METRICS_ADDR ??= '127.0.0.1:9464';
  env.HTTP_AUTH_ADDR ??= '127.0.0.1:8080';

  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, { pretty: true });
  const app = await startApp(config, logger);

  const addr = `localhost:${app.port}`;
  if (generatedSecret) {
    const orgId = newId('org');
    const token = await mintUserToken(
      generatedSecret,
      { sub: newId('usr'), orgId, role: 'admin', email: 'dev@example.com', emailVerified: true },
      '12h',
    );
    say(`admin token for dev organization ${orgId} (valid 12 h):`);
    process.stdout.write(`export TOKEN='${token}'\n`);
  }
  process.stdout.write(`export VERIFY_TOKEN='${config.auth.verifyTokens[0]}'\n`);
  say(`try: grpcurl -plaintext ${addr} list`);
  say(
    `     grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"name":"first key","scopes":["read"]}' ${addr} apikeys.v1.KeyService/CreateKey`,
  );

  if (app.httpAuthPort !== undefined) {
    say(
      `forward auth (docs/gateways.md): curl -i -H "x-service-token: $VERIFY_TOKEN" -H "x-api-key: <secret>" http://127.0.0.1:${app.httpAuthPort}/authorize`,
    );
  }

  const stop = async () => {
    await app.stop();
    await db?.stop();
    process.exit(0);
  };
  // A stop that fails surfaces as an unhandled rejection, which ends the process with its error.
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

dev().catch((err: unknown) => {
  process.stderr.write(`dev mode failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
