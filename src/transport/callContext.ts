import type { Metadata } from '@grpc/grpc-js';
import type { Authenticated } from '../domain/authentication';
import type { CallContext, Principal } from '../domain/principal';
import type { RequestIdSource } from './interceptors/requestId';

/**
 * A call's context as the authentication interceptor builds it. The caller is known before the
 * organization is resolved, so a call refused for its acting-as still names its caller in the
 * access log; handlers only ever see admitted contexts.
 */
export class RpcContext implements CallContext {
  orgId = '';
  actingAs = false;
  admitted = false;
  private controller?: AbortController;
  private abortReason?: DOMException;

  constructor(
    readonly principal: Principal,
    private readonly ids: RequestIdSource | string,
    readonly method: string,
    readonly deadline: number,
  ) {}

  /** Asked for lazily: a VerifyKey answered without a request id never has one made (requestId.ts). */
  get requestId(): string {
    return typeof this.ids === 'string' ? this.ids : this.ids.requestId();
  }

  admit(a: Authenticated): void {
    this.orgId = a.orgId;
    this.actingAs = a.actingAs;
    this.admitted = true;
  }

  /** Made on first use: most calls (every VerifyKey) never ask, and pay nothing for it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** The client cancelled, or the deadline passed: nobody waits for this call's answer anymore. */
  abort(byDeadline: boolean): void {
    this.abortReason ??= byDeadline
      ? new DOMException('the call’s deadline passed', 'TimeoutError')
      : new DOMException('the client cancelled the call', 'AbortError');
    this.controller?.abort(this.abortReason);
  }
}

/**
 * How the authentication interceptor hands its result to the access log and handlers. grpc-js
 * passes the Metadata object an interceptor forwards with next() through to the handler's
 * `call.metadata` unchanged, so the context rides on the object itself, under a symbol only this
 * module has: nothing a client sends can forge it. (A WeakMap keyed by the object did the same at
 * ~1 µs per call, and ephemerons for the collector to trace.) A test pins this.
 */
const CONTEXT = Symbol('call context');

type Carrying = Metadata & { [CONTEXT]?: RpcContext };

export function attachContext(metadata: Metadata, ctx: RpcContext): void {
  (metadata as Carrying)[CONTEXT] = ctx;
}

/** The call's context, admitted or not; undefined when authentication did not get to a caller. */
export function attachedContext(metadata: Metadata): RpcContext | undefined {
  return (metadata as Carrying)[CONTEXT];
}

export function contextOf(call: { metadata: Metadata }): CallContext {
  const ctx = attachedContext(call.metadata);
  // Reaching a handler without an admitted context would mean the interceptor was bypassed: refuse.
  if (!ctx?.admitted) throw new Error('no call context: the authentication interceptor did not run for this call');
  return ctx;
}
