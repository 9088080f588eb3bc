import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { Any } from '../gen/google/protobuf/any';
import { BadRequest, ErrorInfo } from '../gen/google/rpc/error_details';
import { Status } from '../gen/google/rpc/status';
// One-way: the server shares the client's name for the status-details trailer; src/client imports nothing of the server.
import { STATUS_DETAILS_KEY } from '../client/statusDetails';
import { DomainError, type Reason } from '../domain/errors';
import type { Logger } from '../logging/logger';

/** ErrorInfo.domain: the service's name (AIP-193). */
export const ERROR_DOMAIN = 'apikeys.v1';

/**
 * The one table from reason to gRPC code and to the HTTP status a gateway should answer with.
 * The README's error table is checked against it by a test.
 */
export const REASON_STATUS: Record<Reason, { code: status; http: number }> = {
  INVALID_ARGUMENT: { code: status.INVALID_ARGUMENT, http: 422 },
  NAME_REQUIRED: { code: status.INVALID_ARGUMENT, http: 422 },
  NAME_TOO_LONG: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_NAME: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_RATE_LIMIT: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_PAGE_SIZE: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_SCOPES: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_ENVIRONMENT: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_EXPIRE_TIME: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_METADATA: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_ID: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_WORKSPACE_ID: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_REQUEST_ID: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_PAGE_TOKEN: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_COMMENT: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_ORGANIZATION_ID: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_REQUEST_ID_HEADER: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_UPDATE_MASK: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_OVERLAP: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_AUDIT_FILTER: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_TIMESTAMP: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_DURATION: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_TIME_RANGE: { code: status.INVALID_ARGUMENT, http: 422 },
  MALFORMED_REQUEST: { code: status.INVALID_ARGUMENT, http: 422 },
  INVALID_KEY_FORMAT: { code: status.INVALID_ARGUMENT, http: 422 },
  UNAUTHENTICATED: { code: status.UNAUTHENTICATED, http: 401 },
  INVALID_TOKEN: { code: status.UNAUTHENTICATED, http: 401 },
  TOKEN_EXPIRED: { code: status.UNAUTHENTICATED, http: 401 },
  INVALID_API_KEY: { code: status.UNAUTHENTICATED, http: 401 },
  TOO_MANY_FAILED_AUTHENTICATIONS: { code: status.RESOURCE_EXHAUSTED, http: 429 },
  PERMISSION_DENIED: { code: status.PERMISSION_DENIED, http: 403 },
  INSUFFICIENT_SCOPE: { code: status.PERMISSION_DENIED, http: 403 },
  ACTING_AS_FORBIDDEN: { code: status.PERMISSION_DENIED, http: 403 },
  SCOPE_ESCALATION: { code: status.PERMISSION_DENIED, http: 403 },
  ENVIRONMENT_ESCALATION: { code: status.PERMISSION_DENIED, http: 403 },
  EXPIRY_ESCALATION: { code: status.PERMISSION_DENIED, http: 403 },
  RATE_LIMIT_ESCALATION: { code: status.PERMISSION_DENIED, http: 403 },
  WORKSPACE_ESCALATION: { code: status.PERMISSION_DENIED, http: 403 },
  KEY_NOT_FOUND: { code: status.NOT_FOUND, http: 404 },
  KEY_REVOKED: { code: status.FAILED_PRECONDITION, http: 409 },
  KEY_ARCHIVED: { code: status.FAILED_PRECONDITION, http: 409 },
  KEY_NOT_ARCHIVED: { code: status.FAILED_PRECONDITION, http: 409 },
  KEY_NOT_ACTIVE: { code: status.FAILED_PRECONDITION, http: 409 },
  KEY_ROTATED: { code: status.FAILED_PRECONDITION, http: 409 },
  KEY_RETIRING: { code: status.FAILED_PRECONDITION, http: 409 },
  REQUEST_ID_REUSED: { code: status.ALREADY_EXISTS, http: 409 },
  KEY_ALREADY_EXISTS: { code: status.ALREADY_EXISTS, http: 409 },
  KEY_NOT_RECOVERABLE: { code: status.FAILED_PRECONDITION, http: 409 },
  RECOVERY_DISABLED: { code: status.FAILED_PRECONDITION, http: 409 },
  PLAN_LIMIT_REACHED: { code: status.RESOURCE_EXHAUSTED, http: 402 },
  ETAG_MISMATCH: { code: status.ABORTED, http: 409 },
  RATE_LIMITED: { code: status.RESOURCE_EXHAUSTED, http: 429 },
  NOT_IMPLEMENTED: { code: status.UNIMPLEMENTED, http: 501 },
  STORAGE_UNAVAILABLE: { code: status.UNAVAILABLE, http: 503 },
  CALL_ENDED: { code: status.CANCELLED, http: 499 },
  INTERNAL: { code: status.INTERNAL, http: 500 },
};

/** A reason's HTTP status and gRPC status name: what the HTTP endpoints answer with (src/transport/http/). */
export function httpStatusOf(reason: Reason): { http: number; status: string } {
  const s = REASON_STATUS[reason];
  return { http: s.http, status: status[s.code] };
}

function packAny(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

/**
 * The google.rpc.Status message of a DomainError (AIP-193): code, bounded message, ErrorInfo, and
 * BadRequest when there are field violations. What a call's error trailer carries, and what a
 * batch answers per entry (ImportKeys).
 */
export function toRpcStatus(error: DomainError): Status {
  const { code } = REASON_STATUS[error.reason];
  const message = clipBytes(error.message, LIMITS.messageBytes);
  const errorMetadata = Object.fromEntries(
    Object.entries(error.metadata).map(([k, v]) => [clipBytes(k, LIMITS.fieldBytes), clipBytes(v, LIMITS.fieldBytes)]),
  );
  const details: Any[] = [
    packAny('google.rpc.ErrorInfo', ErrorInfo.encode({ reason: error.reason, domain: ERROR_DOMAIN, metadata: errorMetadata }).finish()),
  ];
  if (error.fieldViolations.length > 0) {
    const badRequest = BadRequest.encode({
      fieldViolations: error.fieldViolations.slice(0, LIMITS.violations).map((v) => ({
        field: clipBytes(v.field, LIMITS.fieldBytes),
        description: clipBytes(v.description, LIMITS.descriptionBytes),
        reason: v.reason,
      })),
    }).finish();
    details.push(packAny('google.rpc.BadRequest', badRequest));
  }
  return { code, message, details };
}

/** A grpc-js status carrying google.rpc.Status (ErrorInfo + BadRequest) in its trailers. */
export function toStatus(error: DomainError): PartialStatusObject & { metadata: Metadata } {
  const rpcStatus = toRpcStatus(error);
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(Status.encode(rpcStatus).finish()));
  return { code: REASON_STATUS[error.reason].code, details: rpcStatus.message, metadata };
}

/**
 * Bounds on what an error sends back. Messages and violations may quote the request (an
 * unknown mask path, a bad value); unbounded, a 100 KB input became a 100 KB+ trailer block,
 * over the client's HTTP/2 header limit — the client then dropped the whole connection, with
 * every other call on it (found by test/integration/requestFuzz.test.ts). With these bounds the
 * trailers stay under ~12 KB even for 4-byte characters (grpc-message is percent-encoded).
 */
const LIMITS = { messageBytes: 1024, descriptionBytes: 256, fieldBytes: 128, violations: 10 };

/** `s` cut to at most `max` UTF-8 bytes, on a character boundary, marked with "…" when cut. */
export function clipBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max - 3) break; // room for "…" (3 bytes)
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}

/** Storage driver errors that mean "the database is not reachable right now". */
function isStorageUnavailable(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name ?? '';
  if (/^Mongo(ServerSelection|NetworkTimeout|Network|NotConnected|Topology|PoolCleared)/.test(name)) return true;
  // MaxTimeMSExpired: the query ran past MONGODB_OPERATION_TIMEOUT_MS, so the database is behind.
  if (name === 'MongoServerError' && (err as { code?: unknown }).code === 50) return true;
  // The driver sometimes lets a socket error through unwrapped, e.g. a plain Error with code
  // EPIPE ("This socket has been ended by the other party") when the server dies mid-write.
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && ['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTCONN'].includes(code);
}

/**
 * Any thrown value → a safe DomainError. Unknown errors are logged here (they are bugs or
 * outages) and reach the client as INTERNAL/UNAVAILABLE with no internals.
 */
export function toDomainError(err: unknown, logger: Logger): DomainError {
  if (err instanceof DomainError) return err;
  // Storage stopped because the call's signal aborted: the client cancelled or its deadline passed.
  if (err instanceof DOMException && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new DomainError('CALL_ENDED', err.message);
  }
  if (isStorageUnavailable(err)) {
    logger.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'storage unavailable');
    return new DomainError('STORAGE_UNAVAILABLE', 'storage is unavailable; retry with backoff');
  }
  logger.error({ err }, 'unexpected error');
  return new DomainError('INTERNAL', 'internal error');
}

/** For handlers' callbacks, which take a ServiceError-shaped object. */
export function toServiceError(error: DomainError): Partial<ServiceError> {
  const s = toStatus(error);
  return { code: s.code, details: s.details, metadata: s.metadata, message: s.details };
}
