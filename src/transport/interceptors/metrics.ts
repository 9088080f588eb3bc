import { status as grpcStatus, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { MethodCalls, Metrics } from '../../observability/metrics';
import { interceptor, InterceptorCall } from './interceptorCall';

class MetricsCall extends InterceptorCall {
  private readonly started = performance.now();
  private ended = false;

  constructor(
    next: ServerInterceptingCallInterface,
    private readonly metrics: Metrics,
    private readonly calls: MethodCalls,
  ) {
    super(next);
    metrics.rpcStarted(calls);
  }

  override sendStatus(status: PartialStatusObject): void {
    this.end(status.code);
    super.sendStatus(status);
  }

  override onCancel(): void {
    // After a status the call is counted already; without one, nobody else reports the end.
    if (!this.ended) this.end(this.deadlinePassed() ? grpcStatus.DEADLINE_EXCEEDED : grpcStatus.CANCELLED);
    super.onCancel();
  }

  /** Counts the call's final code, once. */
  private end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.rpcEnded(this.calls, code, (performance.now() - this.started) / 1000);
  }
}

/** Calls started, handled (by final code), their duration and how many are in flight, for every service. */
export function metricsInterceptor(metrics: Metrics): ServerInterceptor {
  return interceptor((descriptor, call) => new MetricsCall(call, metrics, metrics.method(descriptor.path)));
}
