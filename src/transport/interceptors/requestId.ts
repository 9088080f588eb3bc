import { Metadata, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../../domain/errors';
import { toStatus } from '../errors';
import { interceptor, InterceptorCall } from './interceptorCall';

const HEADER = 'x-request-id';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const invalid = () =>
  new DomainError('INVALID_REQUEST_ID_HEADER', 'x-request-id must be 1–128 characters of [A-Za-z0-9._:-]', [
    { field: HEADER, reason: 'INVALID_REQUEST_ID_HEADER', description: 'must match ^[A-Za-z0-9._:-]{1,128}$' },
  ]);

/** A generated id rides on the request metadata under a symbol, as the call context does, rather than as a header set (and checked) there. */
const GENERATED = Symbol('generated request id');
type Carrying = Metadata & { [GENERATED]?: string };

/**
 * Response metadata holding x-request-id, set without grpc-js's checks of the name and value (two
 * regular expressions, twice a call): the name is this constant, and the value matched REQUEST_ID
 * or is a UUID, both within what those checks allow.
 */
class Echo extends Metadata {
  constructor(id: string) {
    super();
    this.internalRepr.set(HEADER, [id]);
  }
}

class RequestIdCall extends InterceptorCall {
  private id?: string;

  /** Generated when first needed: the caller sent none, or one this call refuses. */
  private echoedId(): string {
    return (this.id ??= randomUUID());
  }

  override onReceiveMetadata(metadata: Metadata): void {
    const given = metadata.get(HEADER);
    if (given.length === 0) {
      (metadata as Carrying)[GENERATED] = this.echoedId();
    } else if (given.length === 1 && typeof given[0] === 'string' && REQUEST_ID.test(given[0])) {
      this.id = given[0];
    } else {
      this.sendStatus(toStatus(invalid()));
      return;
    }
    super.onReceiveMetadata(metadata);
  }

  override sendMetadata(metadata: Metadata): void {
    const echo = new Echo(this.echoedId());
    echo.merge(metadata); // whatever the handler sent (usually nothing), unchecked as grpc-js's merge is
    super.sendMetadata(echo);
  }

  override sendStatus(status: PartialStatusObject): void {
    // grpc-js makes a status object per call and hands it down: adding to it copies nothing.
    if (status.metadata) status.metadata.set(HEADER, this.echoedId());
    else status.metadata = new Echo(this.echoedId());
    super.sendStatus(status);
  }
}

/**
 * Takes the caller's x-request-id (one value, ^[A-Za-z0-9._:-]{1,128}$) or generates one, and
 * echoes it in headers and trailers, refusals included. An invalid one is refused with
 * INVALID_REQUEST_ID_HEADER (answered under a generated id). Past this interceptor the request
 * metadata carries exactly one valid id, the caller's header or the generated one: requestIdOf
 * reads it.
 */
export function requestIdInterceptor(): ServerInterceptor {
  return interceptor((_descriptor, call) => new RequestIdCall(call));
}

/** The call's request id, as requestIdInterceptor left it in the request metadata. */
export function requestIdOf(metadata: Metadata): string {
  return (metadata as Carrying)[GENERATED] ?? (metadata.get(HEADER)[0] as string);
}

/** The request id a status carries back to the client (requestIdInterceptor put it there). */
export function answeredRequestIdOf(status: PartialStatusObject): string | undefined {
  return status.metadata?.get(HEADER)[0] as string | undefined;
}
