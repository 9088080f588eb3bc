import { status as grpcStatus, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Logger } from '../../logging/logger';
import { attachedContext } from '../callContext';
import { decodeStatusDetails } from '../errors';
import { InterceptorCall } from './interceptorCall';
import { answeredRequestIdOf } from './requestId';

function reasonOf(metadata: Metadata | null | undefined): string | undefined {
  try {
    return decodeStatusDetails({ metadata: metadata ?? undefined }).errorInfo?.reason;
  } catch {
    return undefined;
  }
}

class AccessLogCall extends InterceptorCall {
  private readonly started = performance.now();
  private request?: Metadata;

  constructor(
    next: ServerInterceptingCallInterface,
    private readonly logger: Logger,
    private readonly method: string,
  ) {
    super(next);
  }

  override onReceiveMetadata(metadata: Metadata): void {
    this.request = metadata;
    super.onReceiveMetadata(metadata);
  }

  override sendStatus(status: PartialStatusObject): void {
    const ctx = this.request && attachedContext(this.request);
    this.logger.info(
      {
        requestId: answeredRequestIdOf(status),
        method: this.method,
        callerKind: ctx?.principal.kind ?? 'anonymous',
        callerId: ctx?.principal.id,
        orgId: ctx?.orgId || undefined,
        actingAs: ctx?.actingAs || undefined,
        code: grpcStatus[status.code] ?? status.code,
        reason: status.code === grpcStatus.OK ? undefined : reasonOf(status.metadata),
        durationMs: performance.now() - this.started,
      },
      'rpc',
    );
    super.sendStatus(status);
  }
}

/**
 * One line per answered call. Only identifiers: the request id the client got back, the
 * caller's kind and id (usr_…, key_…, service:N), the effective organization, and for failures
 * the ErrorInfo reason. A caller whose credential was refused is "anonymous"; one refused
 * acting-as keeps its identity (and has no orgId). Placed outside requestIdInterceptor and
 * authenticationInterceptor, so their refusals are logged too.
 */
export function accessLogInterceptor(logger: Logger): ServerInterceptor {
  return (descriptor, call) => new AccessLogCall(call, logger, descriptor.path);
}
