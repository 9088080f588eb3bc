import { status as grpcStatus, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Metrics, RpcMethod } from '../../observability/metrics';
import { InterceptorCall } from './interceptorCall';

class MetricsCall extends InterceptorCall {
  private readonly started = performance.now();
  private readonly method: RpcMethod;
  private ended = false;

  constructor(
    next: ServerInterceptingCallInterface,
    private readonly metrics: Metrics,
    path: string,
  ) {
    super(next);
    this.method = metrics.rpcStarted(path);
  }

  /** Records the call's final code, once. */
  private end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.rpcEnded(this.method, code, (performance.now() - this.started) / 1000);
  }

  override sendStatus(status: PartialStatusObject): void {
    this.end(status.code);
    super.sendStatus(status);
  }

  override onCancel(): void {
    // After a status this is a no-op; without one, nobody else reports the end.
    this.end(this.deadlinePassed() ? grpcStatus.DEADLINE_EXCEEDED : grpcStatus.CANCELLED);
    super.onCancel();
  }
}

/** Calls started, handled (by final code), their duration and how many are in flight, for every service. */
export function metricsInterceptor(metrics: Metrics): ServerInterceptor {
  return (descriptor, call) => new MetricsCall(call, metrics, descriptor.path);
}
