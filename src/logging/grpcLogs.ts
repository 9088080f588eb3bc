import { setLogger } from '@grpc/grpc-js';
import type { Logger } from './logger';

/**
 * grpc-js logs on its own (stderr by default), and some of its lines quote request headers:
 * a header value with a character HTTP/2 allows but gRPC does not (e.g. "é") is dropped with
 * `Failed to add metadata entry authorization: Bearer <the whole token>…`, and the server_call
 * tracer (GRPC_TRACE) prints every received header as JSON. Its lines go through pino here,
 * with header values withheld, so no credential reaches any log.
 */
export function scrubGrpcLog(text: string): string {
  return text
    .replace(/(Failed to add metadata entry [^\s:]+):[\s\S]*/, '$1: [value withheld]')
    .replace(/(received headers )[\s\S]*/, '$1[withheld]')
    .replace(/\bBearer\s+\S+/gi, 'Bearer [withheld]');
}

/** Process-wide (grpc-js has one logger): the most recently built server's logger wins. */
export function routeGrpcLogs(logger: Logger): void {
  const child = logger.child({ component: 'grpc-js' });
  const line = (args: unknown[]) => scrubGrpcLog(args.map(String).join(' '));
  setLogger({
    error: (...args: unknown[]) => child.error(line(args)),
    info: (...args: unknown[]) => child.info(line(args)),
    debug: (...args: unknown[]) => child.debug(line(args)),
  });
}
