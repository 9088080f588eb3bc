import {
  Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as grpcStatus,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { Authenticator } from '../domain/authentication';
import { DomainError } from '../domain/errors';
import type { CallContext } from '../domain/principal';
import type { Logger } from '../logging/logger';
import { attachContext } from './callContext';
import { toDomainError, toStatus } from './errors';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Health checks and reflection are open: load balancers and grpcurl call them unauthenticated. */
const OPEN_SERVICES = ['/grpc.health.v1.Health/', '/grpc.reflection.'];

function strings(metadata: Metadata, key: string): string[] {
  return metadata.get(key).map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
}

function requestIdOf(metadata: Metadata): string {
  const given = strings(metadata, 'x-request-id');
  if (given.length === 0) return randomUUID();
  if (given.length > 1 || !REQUEST_ID.test(given[0])) {
    throw new DomainError('INVALID_REQUEST_ID_HEADER', 'x-request-id must be 1–128 characters of [A-Za-z0-9._:-]', [
      { field: 'x-request-id', reason: 'INVALID_REQUEST_ID_HEADER', description: 'must match ^[A-Za-z0-9._:-]{1,128}$' },
    ]);
  }
  return given[0];
}

async function resolve(authenticator: Authenticator, metadata: Metadata, method: string, requestId: string): Promise<CallContext> {
  const auth = await authenticator.authenticate({
    authorization: strings(metadata, 'authorization'),
    apiKey: strings(metadata, 'x-api-key'),
    organizationId: strings(metadata, 'x-organization-id'),
  });
  return { ...auth, requestId, method };
}

/**
 * The one server interceptor: authenticates every call (health and reflection aside), resolves
 * the effective organization, hands handlers a typed context, echoes x-request-id, and writes
 * one access-log line per call. Credentials are never logged.
 */
export function authInterceptor(authenticator: Authenticator, logger: Logger): ServerInterceptor {
  return (descriptor, call) => {
    const method = descriptor.path;
    if (OPEN_SERVICES.some((p) => method.startsWith(p))) return new ServerInterceptingCall(call);
    const started = process.hrtime.bigint();
    let requestId: string = randomUUID();
    let ctx: CallContext | undefined;

    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withStart((next) => {
          const listener = new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const reject = (err: unknown) => intercepting.sendStatus(toStatus(toDomainError(err, logger)));
              try {
                requestId = requestIdOf(metadata);
              } catch (err) {
                reject(err);
                return;
              }
              resolve(authenticator, metadata, method, requestId).then((resolved) => {
                ctx = resolved;
                attachContext(metadata, resolved);
                nextMetadata(metadata);
              }, reject);
            })
            .build();
          next(listener);
        })
        .withSendMetadata((metadata, next) => {
          metadata.set('x-request-id', requestId);
          next(metadata);
        })
        .withSendStatus((status, next) => {
          const metadata = status.metadata ?? new Metadata();
          metadata.set('x-request-id', requestId);
          accessLog(logger, { method, requestId, ctx, code: status.code, started });
          next({ ...status, metadata });
        })
        .build(),
    );
    return intercepting;
  };
}

function accessLog(
  logger: Logger,
  e: { method: string; requestId: string; ctx?: CallContext; code: number; started: bigint },
): void {
  const principal = e.ctx?.principal;
  logger.info(
    {
      requestId: e.requestId,
      method: e.method,
      callerKind: principal?.kind ?? 'anonymous',
      callerId: principal?.id,
      orgId: e.ctx?.orgId || undefined,
      actingAs: e.ctx?.actingAs || undefined,
      code: grpcStatus[e.code] ?? e.code,
      durationMs: Number(process.hrtime.bigint() - e.started) / 1e6,
    },
    'rpc',
  );
}
