import { status as grpcStatus, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Logger } from '../../logging/logger';
import { attachedContext } from '../callContext';
import { decodeStatusDetails } from '../../client/statusDetails';
import { interceptor, InterceptorCall } from './interceptorCall';
import { echoedRequestIdOf } from './requestId';

function reasonOf(metadata: Metadata | null | undefined): string | undefined {
  try {
    return decodeStatusDetails({ metadata: metadata ?? undefined }).errorInfo?.reason;
  } catch {
    return undefined;
  }
}

/** The share (0–1) of a method's successful calls that get a line; failed calls always get one. */
export type AccessLogShare = (path: string) => number;

class AccessLogCall extends InterceptorCall {
  private readonly started = performance.now();
  private request?: Metadata;

  constructor(
    next: ServerInterceptingCallInterface,
    private readonly logger: Logger,
    private readonly sampledLog: Logger,
    private readonly method: string,
    private readonly share: number,
  ) {
    super(next);
  }

  override onReceiveMetadata(metadata: Metadata): void {
    this.request = metadata;
    super.onReceiveMetadata(metadata);
  }

  override sendStatus(status: PartialStatusObject): void {
    const ok = status.code === grpcStatus.OK;
    if (!ok || this.share >= 1 || Math.random() < this.share) this.log(status, ok);
    super.sendStatus(status);
  }

  private log(status: PartialStatusObject, ok: boolean): void {
    const ctx = this.request && attachedContext(this.request);
    const sampled = ok && this.share < 1;
    (sampled ? this.sampledLog : this.logger).info(
      {
        requestId: echoedRequestIdOf(status),
        method: this.method,
        callerKind: ctx?.principal.kind ?? 'anonymous',
        callerId: ctx?.principal.id,
        orgId: ctx?.orgId || undefined,
        actingAs: ctx?.actingAs || undefined,
        code: (grpcStatus[status.code] as string | undefined) ?? status.code,
        reason: ok ? undefined : reasonOf(status.metadata),
        durationMs: performance.now() - this.started,
        // A sampled line stands for 1/sampleRate calls like it.
        sampleRate: sampled ? this.share : undefined,
      },
      'rpc',
    );
  }
}

/**
 * One line per answered call, or per sampled successful call where `shareOf` says so. Only
 * identifiers: the request id the client got back, the caller's kind and id (usr_…, key_…,
 * service:N), the effective organization, and for failures the ErrorInfo reason. A caller whose
 * credential was refused is "anonymous"; one refused acting-as keeps its identity (and has no
 * orgId). Placed outside requestIdInterceptor and authenticationInterceptor, so their refusals
 * are logged too. Sampled lines go to `sampledLog` (batched in production: batchedLogger).
 */
export function accessLogInterceptor(logger: Logger, shareOf: AccessLogShare, sampledLog: Logger = logger): ServerInterceptor {
  return interceptor((descriptor, call) => new AccessLogCall(call, logger, sampledLog, descriptor.path, shareOf(descriptor.path)));
}
