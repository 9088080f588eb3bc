import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';

/** Health checks and reflection: load balancers and grpcurl call them unauthenticated. */
const OPEN_SERVICE = /^\/(grpc\.health\.v1\.Health\/|grpc\.reflection\.)/;

/** `interceptor` for this service's own methods; health and reflection calls pass by it untouched. */
export function exceptOpenServices(interceptor: ServerInterceptor): ServerInterceptor {
  return (descriptor, call) => (OPEN_SERVICE.test(descriptor.path) ? new ServerInterceptingCall(call) : interceptor(descriptor, call));
}
