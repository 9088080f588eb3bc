import type { IncomingHttpHeaders } from 'node:http';
import { VerifyCode, type VerifyKeyResponse } from '../../gen/apikeys/v1/verify_service';

/**
 * Checking the API key an HTTP request presents, for the Express and Fastify middleware and for
 * the service's own forward-auth endpoint: which header carries the key, what each verification
 * result answers, and the JSON error envelope. Pure: the verification itself is whatever
 * `Verifies` is given.
 */

/** What a verification answers: VerifyKeyResponse's fields, without `valid` (the code says it). */
export type Verification = Pick<
  VerifyKeyResponse,
  'code' | 'keyId' | 'orgId' | 'workspaceId' | 'scopes' | 'metadata' | 'expireTime' | 'rateLimit'
>;

/** Anything that verifies a key: a VerifyKey client, or the service's in-process Verifier. */
export interface Verifies {
  verify(secret: string, requiredScopes: readonly string[]): Promise<Verification>;
}

/** Who a request's key belongs to, once it verified. */
export type ApiKeyIdentity = Omit<Verification, 'code'>;

/**
 * The refusals an HTTP check answers with, and their HTTP status and gRPC status name: the rows
 * of REASON_STATUS (src/transport/errors.ts) for these reasons, which a unit test holds them to.
 */
export const REFUSALS = {
  UNAUTHENTICATED: { http: 401, status: 'UNAUTHENTICATED' },
  INVALID_API_KEY: { http: 401, status: 'UNAUTHENTICATED' },
  INSUFFICIENT_SCOPE: { http: 403, status: 'PERMISSION_DENIED' },
  RATE_LIMITED: { http: 429, status: 'RESOURCE_EXHAUSTED' },
  STORAGE_UNAVAILABLE: { http: 503, status: 'UNAVAILABLE' },
} as const;

export type RefusalReason = keyof typeof REFUSALS;

export interface Refusal {
  reason: RefusalReason;
  message: string;
  /** For RATE_LIMITED: when the key's window ends, in whole seconds from now (at least 1). */
  retryAfterSeconds?: number;
}

export type KeyCheck = { ok: true; identity: ApiKeyIdentity } | { ok: false; refusal: Refusal };

/** The body of every refusal: google.rpc.Status as JSON, with ErrorInfo's reason beside the message. */
export interface ErrorEnvelope {
  error: { code: number; status: string; reason: string; message: string };
}

const NOT_VALID = 'the API key is incorrect, revoked, archived or expired';

/**
 * The key of `headers` verified against `requiredScopes`. A refusal for anything about the key;
 * a rejection only when the verifier itself fails (unreachable, storage down), which callers must
 * answer as unavailable, never as success.
 */
export async function checkKey(
  verifier: Verifies,
  headers: IncomingHttpHeaders,
  requiredScopes: readonly string[],
  now: () => number = Date.now,
): Promise<KeyCheck> {
  const presented = presentedKey(headers);
  if ('reason' in presented) return { ok: false, refusal: presented };
  return outcomeOf(await verifier.verify(presented.secret, requiredScopes), requiredScopes, now);
}

/** What a verification of a presented key answers: the identity, or the refusal for its code. */
export function outcomeOf(v: Verification, requiredScopes: readonly string[], now: () => number = Date.now): KeyCheck {
  switch (v.code) {
    case VerifyCode.VERIFY_CODE_VALID: {
      const { code: _code, ...identity } = v;
      return { ok: true, identity };
    }
    case VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE:
      return refuse('INSUFFICIENT_SCOPE', `the API key lacks a required scope (required: ${requiredScopes.join(', ')})`);
    case VerifyCode.VERIFY_CODE_RATE_LIMITED: {
      const reset = v.rateLimit?.resetTime?.getTime() ?? now();
      const retryAfterSeconds = Math.max(1, Math.ceil((reset - now()) / 1000));
      return {
        ok: false,
        refusal: {
          reason: 'RATE_LIMITED',
          message: `the API key's rate limit is reached; retry in ${retryAfterSeconds} s`,
          retryAfterSeconds,
        },
      };
    }
    default:
      // MALFORMED, NOT_FOUND, REVOKED, ARCHIVED, EXPIRED, and any code added later: not valid.
      // The message does not say which: the holder of the key may be anyone.
      return refuse('INVALID_API_KEY', NOT_VALID);
  }
}

const refuse = (reason: RefusalReason, message: string): KeyCheck => ({ ok: false, refusal: { reason, message } });

/** One key, from `authorization: Bearer <key>` or `x-api-key: <key>`; both, or neither, is refused. */
export function presentedKey(headers: IncomingHttpHeaders): { secret: string } | Refusal {
  const authorization = headers.authorization;
  const apiKey = headers['x-api-key'];
  if (authorization === undefined && apiKey === undefined) {
    return { reason: 'UNAUTHENTICATED', message: 'missing API key: send "authorization: Bearer <key>" or "x-api-key: <key>"' };
  }
  if (authorization !== undefined && apiKey !== undefined) {
    return { reason: 'UNAUTHENTICATED', message: 'send exactly one API key: one authorization or one x-api-key header' };
  }
  if (apiKey !== undefined) {
    // Node joins a repeated x-api-key into one value; some frameworks keep an array.
    return typeof apiKey === 'string' ? { secret: apiKey } : { reason: 'UNAUTHENTICATED', message: 'send exactly one x-api-key header' };
  }
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(authorization ?? '');
  return match ? { secret: match[1] } : { reason: 'INVALID_API_KEY', message: 'authorization must be "Bearer <key>"' };
}

/** A refusal as an HTTP answer, with `s` the status of its reason. */
export function refusalResponse(
  r: { reason: string; message: string; retryAfterSeconds?: number },
  s: { http: number; status: string },
): { http: number; headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ error: { code: s.http, status: s.status, reason: r.reason, message: r.message } } satisfies ErrorEnvelope);
  // With the length known, Node sends the answer whole instead of chunked.
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
  };
  // RFC 9110: a 401 names the scheme the client should use.
  if (s.http === 401) headers['www-authenticate'] = 'Bearer';
  if (r.retryAfterSeconds !== undefined) headers['retry-after'] = String(r.retryAfterSeconds);
  return { http: s.http, headers, body };
}

/** The refusal for a verifier that failed (network, storage): the request cannot be let through. */
export const UNAVAILABLE: Refusal = { reason: 'STORAGE_UNAVAILABLE', message: 'the API key cannot be verified now; retry' };
