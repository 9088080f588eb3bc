import type { Server } from '@grpc/grpc-js';
import type { Logger } from '../logging/logger';

/**
 * Stops accepting connections and calls, lets the calls in flight finish, and after `graceMs`
 * cancels whatever is still running (forceShutdown). Resolves with how it ended.
 */
export function shutdownGracefully(server: Server, graceMs: number, logger: Logger): Promise<'drained' | 'forced'> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      logger.warn({ graceMs }, 'calls still in flight after SHUTDOWN_GRACE_MS: cancelling them');
      server.forceShutdown();
      resolve('forced');
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve('drained');
    });
  });
}
