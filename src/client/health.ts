import { credentials, makeGenericClientConstructor, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

export type HealthAnswer = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'SERVICE_UNKNOWN';

const STATUS_NAMES: Record<number, HealthAnswer> = { 0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING', 3: 'SERVICE_UNKNOWN' };

/** Check as the generic client built from grpc-health-check's service definition has it. */
type Check = (
  req: { service: string },
  options: CallOptions,
  callback: (err: ServiceError | null, res?: { status?: string | number }) => void,
) => void;

/**
 * grpc.health.v1.Health/Check against `address` ('' = the server as a whole). Rejects with the
 * gRPC error when the server does not answer (unreachable, deadline).
 */
export function checkHealth(address: string, serviceName = '', timeoutMs = 2_000): Promise<HealthAnswer> {
  const Health = makeGenericClientConstructor(healthService, 'Health');
  const client = new Health(address, credentials.createInsecure());
  const check = (client as unknown as { Check: Check }).Check.bind(client);
  return new Promise((resolve, reject) => {
    check({ service: serviceName }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) {
        reject(err);
        return;
      }
      const s = res?.status;
      resolve(typeof s === 'number' ? (STATUS_NAMES[s] ?? 'UNKNOWN') : ((s as HealthAnswer | undefined) ?? 'UNKNOWN'));
    });
  });
}
