import {
  Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as grpcStatus,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { Authenticator, Credentials } from '../domain/authentication';
import { DomainError } from '../domain/errors';
import type { CallContext, Principal } from '../domain/principal';
import type { Logger } from '../logging/logger';
import { attachContext } from './callContext';
import { decodeStatusDetails, toDomainError, toStatus } from './errors';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Health checks and reflection are open: load balancers and grpcurl call them unauthenticated. */
const OPEN_SERVICES = ['/grpc.health.v1.Health/', '/grpc.reflection.'];

function strings(metadata: Metadata, key: string): string[] {
  return metadata.get(key).map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
}

/** The caller's x-request-id, validated; undefined when none was sent. */
function requestIdOf(metadata: Metadata): string | undefined {
  const given = strings(metadata, 'x-request-id');
  if (given.length === 0) return undefined;
  if (given.length > 1 || !REQUEST_ID.test(given[0])) {
    throw new DomainError('INVALID_REQUEST_ID_HEADER', 'x-request-id must be 1–128 characters of [A-Za-z0-9._:-]', [
      { field: 'x-request-id', reason: 'INVALID_REQUEST_ID_HEADER', description: 'must match ^[A-Za-z0-9._:-]{1,128}$' },
    ]);
  }
  return given[0];
}

/** "10.0.0.7:51234" → "10.0.0.7", "::1:51234" → "::1": a peer is its host, whatever the connection. */
export function peerHost(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const host = colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
  return host.replace(/^\[(.*)\]$/, '$1');
}

function credentialsOf(metadata: Metadata, peer: string): Credentials {
  return {
    authorization: strings(metadata, 'authorization'),
    apiKey: strings(metadata, 'x-api-key'),
    organizationId: strings(metadata, 'x-organization-id'),
    peer: peerHost(peer),
  };
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
    // Generated once, up front, so even a call refused for its x-request-id echoes an id.
    let requestId: string = randomUUID();
    /** Known once the credential is verified, even if acting-as is then refused. */
    let principal: Principal | undefined;
    let ctx: CallContext | undefined;

    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withStart((next) => {
          const listener = new ServerListenerBuilder()
            .withOnReceiveMetadata((metadata, nextMetadata) => {
              const reject = (err: unknown) => intercepting.sendStatus(toStatus(toDomainError(err, logger)));
              // Whatever throws, here or below, answers the call: a throw escaping this listener
              // leaves the call hanging, an unhandled rejection ends the process.
              let credentials: Credentials;
              try {
                requestId = requestIdOf(metadata) ?? requestId;
                credentials = credentialsOf(metadata, call.getPeer());
              } catch (err) {
                reject(err);
                return;
              }
              authenticator
                .principalOf(credentials)
                .then((p) => {
                  principal = p;
                  ctx = { ...authenticator.effectiveOrganization(p, credentials.organizationId), requestId, method };
                  attachContext(metadata, ctx);
                  nextMetadata(metadata);
                })
                .catch(reject);
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
          accessLog(logger, { method, requestId, principal, ctx, code: status.code, metadata, started });
          next({ ...status, metadata });
        })
        .build(),
    );
    return intercepting;
  };
}

/**
 * One line per call. Only identifiers: the caller's kind and id (usr_…, key_…, service:N), the
 * effective organization, and for failures the ErrorInfo reason. A caller whose credential was
 * refused is "anonymous"; one refused acting-as keeps its identity (and has no orgId).
 */
function accessLog(
  logger: Logger,
  e: {
    method: string;
    requestId: string;
    principal?: Principal;
    ctx?: CallContext;
    code: number;
    metadata: Metadata;
    started: bigint;
  },
): void {
  const principal = e.principal;
  logger.info(
    {
      requestId: e.requestId,
      method: e.method,
      callerKind: principal?.kind ?? 'anonymous',
      callerId: principal?.id,
      orgId: e.ctx?.orgId || undefined,
      actingAs: e.ctx?.actingAs || undefined,
      code: grpcStatus[e.code] ?? e.code,
      reason: e.code === grpcStatus.OK ? undefined : reasonOf(e.metadata),
      durationMs: Number(process.hrtime.bigint() - e.started) / 1e6,
    },
    'rpc',
  );
}

function reasonOf(metadata: Metadata): string | undefined {
  try {
    return decodeStatusDetails({ metadata }).errorInfo?.reason;
  } catch {
    return undefined;
  }
}
