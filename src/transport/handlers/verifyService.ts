import { VerifyCode, type VerifyKeyResponse, type VerifyServiceServer } from '../../gen/apikeys/v1/verify_service';
import { authorizeVerify } from '../../domain/authorization';
import type { VerifyCodeName, VerifyResult, Verifier } from '../../domain/verification';
import type { Logger } from '../../logging/logger';
import type { Metrics } from '../../observability/metrics';
import { unary } from './unary';

const CODE: Record<VerifyCodeName, VerifyCode> = {
  VALID: VerifyCode.VERIFY_CODE_VALID,
  MALFORMED: VerifyCode.VERIFY_CODE_MALFORMED,
  NOT_FOUND: VerifyCode.VERIFY_CODE_NOT_FOUND,
  REVOKED: VerifyCode.VERIFY_CODE_REVOKED,
  ARCHIVED: VerifyCode.VERIFY_CODE_ARCHIVED,
  EXPIRED: VerifyCode.VERIFY_CODE_EXPIRED,
  INSUFFICIENT_SCOPE: VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE,
  RATE_LIMITED: VerifyCode.VERIFY_CODE_RATE_LIMITED,
};

/** VerifyKey's answer for a verification's result (also what the forward-auth endpoint decides on). */
export function verifyKeyResponse({ code, key, rate }: VerifyResult): VerifyKeyResponse {
  return {
    valid: code === 'VALID',
    code: CODE[code],
    keyId: key?._id ?? '',
    orgId: key?.org_id ?? '',
    workspaceId: key?.workspace_id ?? '',
    scopes: key?.scopes ?? [],
    metadata: key?.metadata ?? {},
    expireTime: key?.expires_at_ms != null ? new Date(key.expires_at_ms) : undefined,
    rateLimit: rate && { limit: rate.limit, remaining: rate.remaining, resetTime: new Date(rate.resetAt) },
  };
}

/** Results about the presented key are answers, not RPC errors; only the caller's own problems are errors. */
export function verifyServiceHandlers(verifier: Verifier, logger: Logger, metrics?: Metrics): VerifyServiceServer {
  return {
    verifyKey: unary(logger, async (req, ctx) => {
      authorizeVerify(ctx);
      const result = await verifier.verify(req.key, req.requiredScopes);
      metrics?.verifyResult(result.code);
      return verifyKeyResponse(result);
    }),
  };
}
