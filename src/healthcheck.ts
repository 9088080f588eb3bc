/**
 * Container health probe: `node dist/healthcheck.js [service]`. Calls grpc.health.v1.Health/Check
 * on this instance (GRPC_ADDR's port on loopback) and exits 0 only for SERVING, 1 otherwise —
 * what Docker's HEALTHCHECK and a Kubernetes exec probe expect. The empty service name (default)
 * is the server as a whole; `apikeys.v1.KeyService` and `apikeys.v1.VerifyService` also answer.
 * No configuration validation and no database: it only asks the running server.
 */
import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

const TIMEOUT_MS = 2_000;

function target(addr: string): string {
  const port = /:(\d{1,5})$/.exec(addr)?.[1] ?? '50051';
  return `127.0.0.1:${port}`;
}

function main(): void {
  const addr = target(process.env.GRPC_ADDR || '0.0.0.0:50051');
  const serviceName = process.argv[2] ?? '';
  const Health = makeGenericClientConstructor(healthService, 'Health');
  const client = new Health(addr, credentials.createInsecure());
  const check = (client as unknown as Record<string, Function>).Check.bind(client);
  check(
    { service: serviceName },
    { deadline: Date.now() + TIMEOUT_MS },
    (err: ServiceError | null, res?: { status?: string | number }) => {
      client.close();
      const status = err ? `error: ${err.message}` : String(res?.status);
      const ok = !err && (res?.status === 'SERVING' || res?.status === 1);
      process.stdout.write(`${addr} ${serviceName || '(server)'}: ${ok ? 'SERVING' : status}\n`);
      process.exit(ok ? 0 : 1);
    },
  );
}

main();
