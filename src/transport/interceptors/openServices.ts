import type { ServerInterceptor } from '@grpc/grpc-js';
import { interceptor, InterceptorCall } from './interceptorCall';

/** Health checks and reflection: load balancers and grpcurl call them unauthenticated. */
const OPEN_SERVICE = /^\/(grpc\.health\.v1\.Health\/|grpc\.reflection\.)/;

/** A part that only passes events on: what an open call gets in place of the interceptors it skips. */
class PassingCall extends InterceptorCall {}

/** `first` and `rest`, in order, for this service's own methods; health and reflection calls pass by them all. */
export function exceptOpenServices(first: ServerInterceptor, ...rest: ServerInterceptor[]): ServerInterceptor {
  const passing = interceptor((_descriptor, call) => new PassingCall(call));
  return (descriptor, call) =>
    OPEN_SERVICE.test(descriptor.path) ? passing(descriptor, call) : rest.reduce((c, next) => next(descriptor, c), first(descriptor, call));
}
