import type { handleUnaryCall } from '@grpc/grpc-js';
import type { CallContext } from '../../domain/principal';
import type { Logger } from '../../logging/logger';
import { contextOf } from '../callContext';
import { toDomainError, toServiceError } from '../errors';
import { decodedRequest } from '../requestDecoding';

/**
 * Adapts a (request, context) → response function to a grpc-js unary handler. A response given
 * at once (not a promise) is sent at once: VerifyKey's cache hits make no promise.
 */
export function unary<Req, Res>(logger: Logger, fn: (req: Req, ctx: CallContext) => Res | Promise<Res>): handleUnaryCall<Req, Res> {
  const fail = (callback: Parameters<handleUnaryCall<Req, Res>>[1], err: unknown) => callback(toServiceError(toDomainError(err, logger)));
  return (call, callback) => {
    let answer: Res | Promise<Res>;
    try {
      answer = fn(decodedRequest(call.request), contextOf(call));
    } catch (err) {
      // A refused request or a missing context throws before fn runs: answered like fn's own errors.
      fail(callback, err);
      return;
    }
    if (!(answer instanceof Promise)) {
      callback(null, answer);
      return;
    }
    answer.then(
      (res) => callback(null, res),
      (err: unknown) => fail(callback, err),
    );
  };
}
