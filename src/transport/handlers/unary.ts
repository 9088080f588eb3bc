import type { handleUnaryCall } from '@grpc/grpc-js';
import type { CallContext } from '../../domain/principal';
import type { Logger } from '../../logging/logger';
import { contextOf } from '../callContext';
import { toDomainError, toServiceError } from '../errors';
import { decodedRequest } from '../requestDecoding';

/** Adapts an async (request, context) → response function to a grpc-js unary handler. */
export function unary<Req, Res>(logger: Logger, fn: (req: Req, ctx: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(decodedRequest(call.request), contextOf(call)))
      .then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(toDomainError(err, logger))),
      );
  };
}
