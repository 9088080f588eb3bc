import type { Metadata, ServerInterceptingCallInterface, ServerInterceptor } from '@grpc/grpc-js';
import { DomainError } from '../../domain/errors';
import type { Metrics } from '../../observability/metrics';
import { toStatus } from '../errors';
import { interceptor, InterceptorCall } from './interceptorCall';

/**
 * Header bytes as HTTP/2 counts them (RFC 7540 §6.5.2): name + value + 32 per entry, values as
 * sent (binary ones base64-encoded, padded), without encoding anything.
 */
export function metadataBytes(metadata: Metadata): number {
  let n = 0;
  const entries = metadata.toJSON();
  for (const key in entries) {
    if (key.startsWith(':')) continue;
    for (const v of entries[key]) n += key.length + (typeof v === 'string' ? v.length : Math.ceil(v.length / 3) * 4) + 32;
  }
  return n;
}

class MetadataLimitCall extends InterceptorCall {
  constructor(
    next: ServerInterceptingCallInterface,
    private readonly maxBytes: number,
    private readonly metrics: Metrics | undefined,
  ) {
    super(next);
  }

  override onReceiveMetadata(metadata: Metadata): void {
    const size = metadataBytes(metadata);
    if (size <= this.maxBytes) {
      super.onReceiveMetadata(metadata);
      return;
    }
    this.metrics?.metadataTooLarge();
    const message = `request metadata is ${size} bytes; this server accepts at most ${this.maxBytes}`;
    const violation = { field: 'metadata', reason: 'INVALID_ARGUMENT' as const, description: message };
    this.sendStatus(toStatus(new DomainError('INVALID_ARGUMENT', message, [violation], { limit_bytes: String(this.maxBytes) })));
  }
}

/**
 * Refuses calls whose metadata exceeds GRPC_MAX_METADATA_BYTES. grpc-js's server ignores
 * grpc.max_metadata_size, so this is the limit, under Node's own 64 KiB HTTP/2 cap.
 */
export function metadataLimitInterceptor(maxBytes: number, metrics?: Metrics): ServerInterceptor {
  return interceptor((_descriptor, call) => new MetadataLimitCall(call, maxBytes, metrics));
}
