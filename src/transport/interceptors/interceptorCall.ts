import { ServerInterceptingCall, type Metadata } from '@grpc/grpc-js';

/** The listener a call hands events to (grpc-js does not export its name). */
type Listener = Parameters<ServerInterceptingCall['start']>[0];

/**
 * One interceptor's part of one call, and at once the listener of the call below it: an
 * interceptor overrides the events it cares about (onReceiveMetadata, onCancel, sendMetadata,
 * sendStatus) as methods, and everything else passes through. grpc-js's ResponderBuilder and
 * ServerListenerBuilder would cost, on every call, two builders, the objects they build and a
 * closure per hook; these are prototype methods, so a call costs this one object beyond what
 * grpc-js's ServerInterceptingCall allocates itself.
 */
export abstract class InterceptorCall extends ServerInterceptingCall implements Listener {
  /** Toward the handler: the next interceptor's part, or grpc-js's handler. */
  private upstream?: Listener;

  override start(listener: Listener): void {
    this.upstream = listener;
    super.start(this);
  }

  /** Passes the request metadata on; an interceptor that refuses the call sends a status instead. */
  onReceiveMetadata(metadata: Metadata): void {
    this.upstream!.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.upstream!.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.upstream!.onReceiveHalfClose();
  }

  /**
   * The call is over. Also fires after a status was sent: without one, the client cancelled or
   * grpc-js enforced the deadline (its DEADLINE_EXCEEDED goes out below every interceptor).
   */
  onCancel(): void {
    this.upstream!.onCancel();
  }

  /** The deadline as milliseconds since the epoch; Infinity when the client set none. */
  protected deadlineMs(): number {
    const deadline = this.getDeadline();
    return deadline instanceof Date ? deadline.getTime() : deadline;
  }

  /** In onCancel without a status sent: was it the deadline rather than the client? */
  protected deadlinePassed(): boolean {
    return this.deadlineMs() <= Date.now();
  }
}
