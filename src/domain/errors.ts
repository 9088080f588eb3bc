/**
 * Every failure the service reports, by reason. The transport maps a reason to a gRPC code
 * and an HTTP status in one table (src/transport/errors.ts); the domain only names it.
 */
export const REASONS = [
  // Validation (INVALID_ARGUMENT)
  'INVALID_ARGUMENT',
  'NAME_REQUIRED',
  'NAME_TOO_LONG',
  'INVALID_NAME',
  'INVALID_RATE_LIMIT',
  'INVALID_PAGE_SIZE',
  'INVALID_SCOPES',
  'INVALID_ENVIRONMENT',
  'INVALID_EXPIRE_TIME',
  'INVALID_METADATA',
  'INVALID_ID',
  'INVALID_WORKSPACE_ID',
  'INVALID_REQUEST_ID',
  'INVALID_PAGE_TOKEN',
  'INVALID_COMMENT',
  'INVALID_ORGANIZATION_ID',
  'INVALID_REQUEST_ID_HEADER',
  'INVALID_UPDATE_MASK',
  'INVALID_OVERLAP',
  'INVALID_AUDIT_FILTER',
  'INVALID_TIMESTAMP',
  'INVALID_DURATION',
  'INVALID_TIME_RANGE',
  'MALFORMED_REQUEST',
  'INVALID_KEY_FORMAT',
  // Callers
  'UNAUTHENTICATED',
  'INVALID_TOKEN',
  'TOKEN_EXPIRED',
  'INVALID_API_KEY',
  'TOO_MANY_FAILED_AUTHENTICATIONS',
  'PERMISSION_DENIED',
  'INSUFFICIENT_SCOPE',
  'ACTING_AS_FORBIDDEN',
  'SCOPE_ESCALATION',
  'ENVIRONMENT_ESCALATION',
  'EXPIRY_ESCALATION',
  'RATE_LIMIT_ESCALATION',
  'WORKSPACE_ESCALATION',
  // Resources and state
  'KEY_NOT_FOUND',
  'KEY_REVOKED',
  'KEY_ARCHIVED',
  'KEY_NOT_ARCHIVED',
  'KEY_NOT_ACTIVE',
  'KEY_ROTATED',
  'KEY_RETIRING',
  'REQUEST_ID_REUSED',
  'KEY_ALREADY_EXISTS',
  'KEY_NOT_RECOVERABLE',
  'RECOVERY_DISABLED',
  'PLAN_LIMIT_REACHED',
  'ETAG_MISMATCH',
  'RATE_LIMITED',
  // The service itself
  'NOT_IMPLEMENTED',
  'STORAGE_UNAVAILABLE',
  // The caller cancelled or its deadline passed while the work ran: nobody reads this answer.
  'CALL_ENDED',
  'INTERNAL',
] as const;

export type Reason = (typeof REASONS)[number];

export interface FieldViolation {
  /** Request field path, e.g. "name" or "metadata[\"env\"]". */
  field: string;
  description: string;
  reason: Reason;
}

/** A failure the caller can act on. Its message is safe to return (no secrets, no internals). */
export class DomainError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    readonly fieldViolations: FieldViolation[] = [],
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** One error carrying every violation; its reason is the first violation's. */
export function validationError(violations: FieldViolation[]): DomainError {
  const summary = violations.map((v) => `${v.field}: ${v.description}`).join('; ');
  return new DomainError(violations[0].reason, `invalid request: ${summary}`, violations);
}

export const keyNotFound = (id: string) => new DomainError('KEY_NOT_FOUND', `key ${id} not found`, [], { key_id: id });
