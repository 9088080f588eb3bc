/**
 * Container health probe: `node dist/healthcheck.js [service]`. Calls grpc.health.v1.Health/Check
 * on this instance (GRPC_ADDR's port on loopback) and exits 0 only for SERVING, 1 otherwise —
 * what Docker's HEALTHCHECK and a Kubernetes exec probe expect. The empty service name (default)
 * is the server as a whole; `apikeys.v1.KeyService` and `apikeys.v1.VerifyService` also answer.
 * No configuration validation and no database: it only asks the running server.
 */
import { checkHealth } from './client/health';

const TIMEOUT_MS = 2_000;

function target(addr: string): string {
  const port = /:(\d{1,5})$/.exec(addr)?.[1] ?? '50051';
  return `127.0.0.1:${port}`;
}

async function main(): Promise<void> {
  const addr = target(process.env.GRPC_ADDR || '0.0.0.0:50051');
  const serviceName = process.argv[2] ?? '';
  const answer = await checkHealth(addr, serviceName, TIMEOUT_MS).catch(
    (err: unknown) => `error: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.stdout.write(`${addr} ${serviceName || '(server)'}: ${answer}\n`);
  process.exit(answer === 'SERVING' ? 0 : 1);
}

void main();
