import { status, type ServiceError } from '@grpc/grpc-js';
import { decodeStatusDetails, type StatusDetails } from '../client/statusDetails';
import { EXIT } from './command';

/** A rejected call, as keyctl reports it: exit code, message, what to do, and the --json fields. */
export interface Failure {
  exit: number;
  message: string;
  hint?: string;
  json: Record<string, unknown>;
}

const HINTS: Partial<Record<number, string>> = {
  [status.UNAUTHENTICATED]: 'check the token: pass --token or set APIKEYS_TOKEN to a valid, unexpired user JWT or API key',
  [status.PERMISSION_DENIED]: 'this credential may not do that (role or key scopes); ask an admin of the organization',
  [status.NOT_FOUND]: "check the id with 'keyctl list' (keys of other organizations are reported as not found)",
  [status.INVALID_ARGUMENT]: "fix the values above; 'keyctl help <command>' shows the flags",
  [status.FAILED_PRECONDITION]: "the key's state does not allow this; see it with 'keyctl get <id>'",
  [status.ABORTED]: "the key changed meanwhile: 'keyctl get <id>' for the new etag, then retry",
  [status.RESOURCE_EXHAUSTED]: 'a limit was reached: revoke or archive unused keys, or raise the organization limit',
  [status.UNIMPLEMENTED]: 'this server does not support the command yet; upgrade the apikeys service',
  [status.UNAVAILABLE]: 'the service cannot reach its database right now; retry shortly',
  [status.INTERNAL]: 'a server-side error; retry, and report it with the request id if it persists',
};

export const isServiceError = (e: unknown): e is ServiceError =>
  typeof e === 'object' && e !== null && typeof (e as ServiceError).code === 'number' && 'details' in e;

export function describeFailure(err: ServiceError, addr: string, timeoutMs: number): Failure {
  let details: StatusDetails = {};
  try {
    details = decodeStatusDetails(err);
  } catch {
    // not our server's details; report the status alone
  }
  // A server may answer with a code this grpc-js has no name for.
  const names: Partial<Record<number, string>> = status;
  const code = names[err.code] ?? String(err.code);
  const requestId = err.metadata.get('x-request-id')[0]?.toString();
  // No ErrorInfo and a transport-level code: the call never reached the service.
  if (!details.errorInfo && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED)) {
    const what =
      err.code === status.DEADLINE_EXCEEDED ? `no answer within ${timeoutMs / 1000}s` : err.details.replace(/\.? ?Resolution note: ?$/, '');
    return {
      exit: EXIT.UNREACHABLE,
      message: `cannot reach the apikeys service at ${addr} (${what})`,
      hint: 'is it running there? set --addr or APIKEYS_ADDR to its host:port (see also --timeout)',
      json: { code, details: err.details, addr },
    };
  }
  const reason = details.errorInfo?.reason;
  const violations = details.badRequest?.fieldViolations ?? [];
  const lines = [`${reason ?? code}${reason ? ` (${code})` : ''}: ${err.details}`];
  for (const v of violations) lines.push(`  ${v.field}: ${v.description}`);
  if (requestId) lines.push(`  request id: ${requestId}`);
  return {
    exit: EXIT.SERVER,
    message: lines.join('\n'),
    hint: HINTS[err.code],
    json: { code, reason, details: err.details, fieldViolations: violations, requestId },
  };
}
