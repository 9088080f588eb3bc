import type { Metadata } from '@grpc/grpc-js';
import type { CallContext } from '../domain/principal';

/**
 * How the interceptor hands its result to handlers. grpc-js passes the Metadata object that
 * the interceptor forwards with next() through to the handler's `call.metadata` unchanged, so
 * the object itself is the key; nothing a client sends can forge an entry. A test pins this.
 */
const contexts = new WeakMap<Metadata, CallContext>();

export function attachContext(metadata: Metadata, ctx: CallContext): void {
  contexts.set(metadata, ctx);
}

export function contextOf(call: { metadata: Metadata }): CallContext {
  const ctx = contexts.get(call.metadata);
  // Reaching a handler without a context would mean the interceptor was bypassed: refuse.
  if (!ctx) throw new Error('no call context: the authentication interceptor did not run for this call');
  return ctx;
}
