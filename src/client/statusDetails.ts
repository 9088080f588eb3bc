import type { Metadata } from '@grpc/grpc-js';
import { BadRequest, ErrorInfo } from '../gen/google/rpc/error_details';
import { Status } from '../gen/google/rpc/status';

/** The trailer carrying a binary google.rpc.Status with its details (AIP-193). */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

export interface StatusDetails {
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
}

/**
 * ErrorInfo and BadRequest from a rejected call's trailers (or any object with metadata); {}
 * when there are none. Throws on bytes that are not a google.rpc.Status.
 */
export function decodeStatusDetails(err: { metadata?: Metadata }): StatusDetails {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === 'string') return {};
  return statusDetails(Status.decode(raw));
}

/** ErrorInfo and BadRequest of a google.rpc.Status, e.g. one entry's error in a batch answer (ImportKeys). */
export function statusDetails(status: Status): StatusDetails {
  const out: StatusDetails = {};
  for (const any of status.details) {
    if (any.typeUrl.endsWith('/google.rpc.ErrorInfo')) out.errorInfo = ErrorInfo.decode(any.value);
    if (any.typeUrl.endsWith('/google.rpc.BadRequest')) out.badRequest = BadRequest.decode(any.value);
  }
  return out;
}
