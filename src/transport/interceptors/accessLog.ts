import { status as grpcStatus, type Metadata } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Logger } from '../../logging/logger';
import { attachedContext } from '../callContext';
import { decodeStatusDetails } from '../../client/statusDetails';
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

/** What the access log needs of a call: kept on the call's one interceptor part (serviceCall.ts). */
export interface LoggedCall {
  readonly method: string;
  /** The method's share (AccessLog.shareOf). */
  readonly share: number;
  /** performance.now() when the call started. */
  readonly started: number;
  /** The request metadata, once received: the call context rides on it. */
  readonly request?: Metadata;
}

/**
 * One line per answered call, or per sampled successful call where `shareOf` says so. Only
 * identifiers: the request id the client got back, the caller's kind and id (usr_…, key_…,
 * service:N), the effective organization, and for failures the ErrorInfo reason. A caller whose
 * credential was refused is "anonymous"; one refused acting-as keeps its identity (and has no
 * orgId). It sees the status after the request id and authentication parts did, so their
 * refusals are logged too. Sampled lines go to `sampledLog` (batched in production: batchedLogger).
 */
export class AccessLog {
  constructor(
    private readonly logger: Logger,
    readonly shareOf: AccessLogShare,
    private readonly sampledLog: Logger = logger,
  ) {}

  /** Whether the call answered with `status` gets a line: every failure, successes by the method's share. */
  logs(call: LoggedCall, status: PartialStatusObject): boolean {
    return status.code !== grpcStatus.OK || call.share >= 1 || Math.random() < call.share;
  }

  /** The line of a call answered with `status` (its request id already echoed), once logs() said it gets one. */
  log(call: LoggedCall, status: PartialStatusObject): void {
    const ok = status.code === grpcStatus.OK;
    const ctx = call.request && attachedContext(call.request);
    const sampled = ok && call.share < 1;
    (sampled ? this.sampledLog : this.logger).info(
      {
        requestId: echoedRequestIdOf(status),
        method: call.method,
        callerKind: ctx?.principal.kind ?? 'anonymous',
        callerId: ctx?.principal.id,
        orgId: ctx?.orgId || undefined,
        actingAs: ctx?.actingAs || undefined,
        code: (grpcStatus[status.code] as string | undefined) ?? status.code,
        reason: ok ? undefined : reasonOf(status.metadata),
        durationMs: performance.now() - call.started,
        // A sampled line stands for 1/sampleRate calls like it.
        sampleRate: sampled ? call.share : undefined,
      },
      'rpc',
    );
  }
}
