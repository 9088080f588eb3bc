import { Metadata, type ServerInterceptingCallInterface, type ServerInterceptor, type ServerMethodDefinition } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';

/** The listener a call hands events to (grpc-js does not export its name). */
type Listener = Parameters<ServerInterceptingCallInterface['start']>[0];

/**
 * One interceptor's part of one call, and at once the listener of the call below it: an
 * interceptor overrides the events it cares about (onReceiveMetadata, onCancel, sendMetadata,
 * sendStatus) as methods, and everything else passes straight through.
 *
 * Not a grpc-js ServerInterceptingCall: those build, on every call, a responder, a listener
 * wrapper and a closure per event, to let hooks answer later through callbacks (constructing
 * one alone cost ~0.16 µs). Ours pass events on synchronously — authentication, the one that
 * waits, holds only the request metadata, and grpc-js's handler reads no message before that
 * metadata reached it — so a call costs this one plain object per interceptor.
 */
/** Where events go before start(): grpc-js starts every call before delivering any, so never used. */
const NOT_STARTED: Listener = {
  onReceiveMetadata: () => undefined,
  onReceiveMessage: () => undefined,
  onReceiveHalfClose: () => undefined,
  onCancel: () => undefined,
};

export abstract class InterceptorCall implements ServerInterceptingCallInterface, Listener {
  // Assigned in the constructor rather than declared as class fields: V8 defines a class field
  // with a "define" store, which turns slow (~0.35 µs per object, measured) once this shared
  // initializer sees more than four subclasses; a plain assignment stays fast.
  /** Toward the client: the previous interceptor's part, or grpc-js's own call. */
  declare private readonly below: ServerInterceptingCallInterface;
  /** Toward the handler: the next interceptor's part, or grpc-js's handler (set by start(), before any event). */
  declare private upstream: Listener;
  declare private headersSent: boolean;

  constructor(below: ServerInterceptingCallInterface) {
    this.below = below;
    this.upstream = NOT_STARTED;
    this.headersSent = false;
  }

  start(listener: Listener): void {
    this.upstream = listener;
    this.below.start(this);
  }

  /** Passes the request metadata on; an interceptor that refuses the call sends a status instead. */
  onReceiveMetadata(metadata: Metadata): void {
    this.upstream.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.upstream.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.upstream.onReceiveHalfClose();
  }

  /**
   * The call is over. Also fires after a status was sent: without one, the client cancelled or
   * grpc-js enforced the deadline (its DEADLINE_EXCEEDED goes out below every interceptor).
   */
  onCancel(): void {
    this.upstream.onCancel();
  }

  sendMetadata(metadata: Metadata): void {
    this.headersSent = true;
    this.below.sendMetadata(metadata);
  }

  /** A handler sends its answer without headers: they go out first, through every sendMetadata, as grpc-js does. */
  sendMessage(message: unknown, callback: () => void): void {
    if (!this.headersSent) this.sendMetadata(new Metadata());
    this.below.sendMessage(message, callback);
  }

  sendStatus(status: PartialStatusObject): void {
    this.below.sendStatus(status);
  }

  startRead(): void {
    this.below.startRead();
  }

  getPeer(): string {
    return this.below.getPeer();
  }

  getDeadline(): ReturnType<ServerInterceptingCallInterface['getDeadline']> {
    return this.below.getDeadline();
  }

  getHost(): string {
    return this.below.getHost();
  }

  getAuthContext(): ReturnType<ServerInterceptingCallInterface['getAuthContext']> {
    return this.below.getAuthContext();
  }

  getConnectionInfo(): ReturnType<ServerInterceptingCallInterface['getConnectionInfo']> {
    return this.below.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<ServerInterceptingCallInterface['getMetricsRecorder']> {
    return this.below.getMetricsRecorder();
  }

  /** The deadline as milliseconds since the epoch; Infinity when the client set none. */
  deadlineMs(): number {
    const deadline = this.getDeadline();
    return deadline instanceof Date ? deadline.getTime() : deadline;
  }

  /** In onCancel without a status sent: was it the deadline rather than the client? */
  protected deadlinePassed(): boolean {
    return this.deadlineMs() <= Date.now();
  }
}

/**
 * A grpc-js interceptor that adds `part` to each call. grpc-js types an interceptor's result as
 * its ServerInterceptingCall class, but uses only the interface, which InterceptorCall implements.
 */
export function interceptor(
  part: (descriptor: ServerMethodDefinition<unknown, unknown>, below: ServerInterceptingCallInterface) => InterceptorCall,
): ServerInterceptor {
  return part as unknown as ServerInterceptor;
}
