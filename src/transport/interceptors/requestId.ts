import { Metadata, status as grpcStatus } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../../domain/errors';
import { toStatus } from '../errors';

const HEADER = 'x-request-id';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const invalid = () =>
  new DomainError('INVALID_REQUEST_ID_HEADER', 'x-request-id must be 1–128 characters of [A-Za-z0-9._:-]', [
    { field: HEADER, reason: 'INVALID_REQUEST_ID_HEADER', description: 'must match ^[A-Za-z0-9._:-]{1,128}$' },
  ]);

/** A call's request id: the caller's, or one generated when first asked for. */
export interface RequestIdSource {
  requestId(): string;
}

/** The call's source of its id rides on the request metadata under a symbol, as the call context does. */
const SOURCE = Symbol('request id source');
type Carrying = Metadata & { [SOURCE]?: RequestIdSource };

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

/** Adds `id` to a status's trailers. grpc-js makes a status object per call and hands it down: adding to it copies nothing. */
function echoIn(status: PartialStatusObject, id: string): void {
  if (status.metadata) status.metadata.set(HEADER, id);
  else status.metadata = new Echo(id);
}

/** Whether a successful call of a method needs no request id unless the caller sent one (see RequestIdState). */
export type QuietOnSuccess = (path: string) => boolean;

/**
 * A call's request id, kept on the call's one interceptor part (serviceCall.ts): the caller's
 * x-request-id (one value, ^[A-Za-z0-9._:-]{1,128}$), echoed in headers and trailers, refusals
 * included; an invalid one is refused with INVALID_REQUEST_ID_HEADER (answered under a generated
 * id). A call that sent none gets a generated one, echoed the same way, except a successful call
 * of a `quiet` method (the access log samples its successes): that one gets an id only if
 * something needed it — a handler, or the access log logging it (serviceCall.ts) — and then in
 * its trailers. Past it the request metadata carries the call's source of its id:
 * requestIdSourceOf reads it.
 */
export interface RequestIdState extends RequestIdSource {
  /** The caller's, or the one generated when first asked for. */
  id?: string;
  readonly quiet: boolean;
}

/** The call's id: the caller's, or generated now (RequestIdSource.requestId of a call that keeps a RequestIdState). */
export function requestIdOf(call: RequestIdState): string {
  return (call.id ??= randomUUID());
}

/** Takes the caller's id onto the call and carries the call on the metadata; the refusal to answer with when it is invalid. */
export function receiveRequestId(call: RequestIdState, metadata: Metadata): PartialStatusObject | undefined {
  const given = metadata.get(HEADER);
  if (given.length === 1 && typeof given[0] === 'string' && REQUEST_ID.test(given[0])) {
    call.id = given[0];
  } else if (given.length !== 0) {
    return toStatus(invalid());
  }
  (metadata as Carrying)[SOURCE] = call;
  return undefined;
}

/** The response headers to send: `metadata` with the id, or as it is for a quiet call without an id yet. */
export function withRequestId(call: RequestIdState, metadata: Metadata): Metadata {
  // A quiet call without an id yet may still fail or be logged: its trailers will say.
  if (call.quiet && call.id === undefined) return metadata;
  const echo = new Echo(call.requestId());
  echo.merge(metadata); // whatever the handler sent (usually nothing), unchecked as grpc-js's merge is
  return echo;
}

/** Adds the id to the status's trailers, unless the call is a quiet success nobody asked an id of. */
export function echoRequestId(call: RequestIdState, status: PartialStatusObject): void {
  if (!call.quiet || call.id !== undefined || status.code !== grpcStatus.OK) echoIn(status, call.requestId());
}

/** The call's source of its request id, as receiveRequestId left it on the request metadata. */
export function requestIdSourceOf(metadata: Metadata): RequestIdSource {
  const source = (metadata as Carrying)[SOURCE];
  if (!source) throw new Error('no request id: the request id part did not run for this call');
  return source;
}

/** The request id a status carries back to the client (echoRequestId put it there), if any. */
export function echoedRequestIdOf(status: PartialStatusObject): string | undefined {
  return status.metadata?.get(HEADER)[0] as string | undefined;
}
