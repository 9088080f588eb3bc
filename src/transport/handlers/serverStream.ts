import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import type { CallContext } from '../../domain/principal';
import type { Logger } from '../../logging/logger';
import { contextOf } from '../callContext';
import { toDomainError, toServiceError } from '../errors';
import { decodedRequest } from '../requestDecoding';

/** Ends a server stream with the status (and ErrorInfo) the error module gives `err`. */
export function failStream(call: ServerWritableStream<unknown, unknown>, err: unknown, logger: Logger): void {
  // grpc-js turns an 'error' event into the call's status (its code, message and trailers) and ends the stream.
  call.emit('error', toServiceError(toDomainError(err, logger)));
}

/** Adapts (request, context, stream) to a grpc-js server-streaming handler; a throw ends the stream with its error. */
export function serverStream<Req, Res>(
  logger: Logger,
  fn: (req: Req, ctx: CallContext, call: ServerWritableStream<Req, Res>) => void,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    try {
      fn(decodedRequest(call.request), contextOf(call), call);
    } catch (err) {
      failStream(call, err, logger);
    }
  };
}
