import {
  Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as grpcStatus,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { DomainError } from '../domain/errors';
import { toStatus } from '../transport/errors';
import type { Metrics } from './metrics';

/** Header bytes as HTTP/2 counts them (RFC 7540 §6.5.2): name + value + 32 per entry. */
export function metadataBytes(metadata: Metadata): number {
  let n = 0;
  for (const [key, values] of Object.entries(metadata.toHttp2Headers())) {
    for (const v of Array.isArray(values) ? values : [values]) n += key.length + String(v ?? '').length + 32;
  }
  return n;
}

/**
 * The outermost server interceptor (first in the server's list: it sees requests first and
 * final statuses last, including the auth interceptor's refusals). Counts and times every call,
 * and refuses calls whose metadata exceeds the configured limit before anything else reads it.
 */
export function rpcInterceptor(metrics: Metrics | undefined, limits: { maxMetadataBytes: number }): ServerInterceptor {
  return (descriptor, call) => {
    const done = metrics?.rpcStarted(descriptor.path);
    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withStart((next) => {
          next(
            new ServerListenerBuilder()
              .withOnReceiveMetadata((metadata, nextMetadata) => {
                const size = metadataBytes(metadata);
                if (size > limits.maxMetadataBytes) {
                  metrics?.metadataTooLarge();
                  const message = `request metadata is ${size} bytes; this server accepts at most ${limits.maxMetadataBytes}`;
                  intercepting.sendStatus(
                    toStatus(
                      new DomainError('INVALID_ARGUMENT', message, [{ field: 'metadata', reason: 'INVALID_ARGUMENT', description: message }], {
                        limit_bytes: String(limits.maxMetadataBytes),
                      }),
                    ),
                  );
                  return;
                }
                nextMetadata(metadata);
              })
              .withOnCancel(() => {
                // Also fires after a normal status (done() then ignores it). Without a status it
                // is the client's cancellation or the server-enforced deadline.
                const deadline = call.getDeadline();
                const past = deadline instanceof Date ? deadline.getTime() <= Date.now() : Number.isFinite(deadline) && deadline <= Date.now();
                done?.(past ? grpcStatus.DEADLINE_EXCEEDED : grpcStatus.CANCELLED);
              })
              .build(),
          );
        })
        .withSendStatus((status, next) => {
          done?.(status.code);
          next(status);
        })
        .build(),
    );
    return intercepting;
  };
}
