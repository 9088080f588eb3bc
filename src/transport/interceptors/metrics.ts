import { status as grpcStatus, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Metrics } from '../../observability/metrics';
import { InterceptorCall } from './interceptorCall';

class MetricsCall extends InterceptorCall {
  constructor(
    next: ServerInterceptingCallInterface,
    /** Records the call's final code; ignores every call after the first. */
    private readonly done: (code: number) => void,
  ) {
    super(next);
  }

  override sendStatus(status: PartialStatusObject): void {
    this.done(status.code);
    super.sendStatus(status);
  }

  override onCancel(): void {
    // After a status this is a no-op (done() already ran); without one, nobody else reports the end.
    this.done(this.deadlinePassed() ? grpcStatus.DEADLINE_EXCEEDED : grpcStatus.CANCELLED);
    super.onCancel();
  }
}

/** Calls started, handled (by final code), their duration and how many are in flight, for every service. */
export function metricsInterceptor(metrics: Metrics): ServerInterceptor {
  return (descriptor, call) => new MetricsCall(call, metrics.rpcStarted(descriptor.path));
}
