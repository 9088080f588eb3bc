// Settling gRPC calls into what tests assert on: the status code and the ErrorInfo reason.
import { status, type ServiceError } from '@grpc/grpc-js';
import { decodeStatusDetails } from '../../src/client/statusDetails';

export interface Failure {
  code: status;
  reason?: string;
  domain?: string;
  /** BadRequest field violations as "field:REASON". */
  fields: string[];
}

function describeFailure(err: ServiceError): Failure {
  const { errorInfo, badRequest } = decodeStatusDetails(err);
  return {
    code: err.code,
    reason: errorInfo?.reason,
    domain: errorInfo?.domain,
    fields: badRequest?.fieldViolations.map((v) => `${v.field}:${v.reason}`) ?? [],
  };
}

/** A rejection that must be a gRPC error; anything else fails the test, showing what it was. */
export function asServiceError(e: unknown): ServiceError {
  if (e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number' && 'metadata' in e) return e as ServiceError;
  throw new Error(`expected a gRPC error, got ${String(e)}`, { cause: e });
}

/** Awaits a call that must fail and returns its gRPC error. */
export function rejection(p: Promise<unknown>): Promise<ServiceError> {
  return p.then(() => {
    throw new Error('expected the call to fail');
  }, asServiceError);
}

/** Awaits a call that must fail and returns its code, ErrorInfo reason and field violations. */
export async function failure(p: Promise<unknown>): Promise<Failure> {
  return describeFailure(await rejection(p));
}

/** "OK", or "CODE/REASON" (e.g. "PERMISSION_DENIED/INSUFFICIENT_SCOPE"): reads like the authorization table of docs/security.md. */
export async function outcome<T>(p: Promise<T>): Promise<{ text: string; value?: T }> {
  try {
    return { text: 'OK', value: await p };
  } catch (err) {
    const f = describeFailure(asServiceError(err));
    return { text: `${status[f.code]}/${f.reason ?? '-'}` };
  }
}
