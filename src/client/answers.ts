/** VerifyKey's answers as the client returns and caches them, and the decisions it can make from a cached one. Pure. */
import { keyState } from '../domain/keyState';
import type { KeyStatus } from '../domain/model';
import { VerifyCode, type VerifyKeyResponse } from '../gen/apikeys/v1/verify_service';
import type { Duration } from '../gen/google/protobuf/duration';

export type VerifierCode = 'VALID' | 'MALFORMED' | 'NOT_FOUND' | 'REVOKED' | 'ARCHIVED' | 'EXPIRED' | 'INSUFFICIENT_SCOPE' | 'RATE_LIMITED';

/** VerifyKey's answer. Results are frozen and may be shared between calls. */
export interface VerifierResult {
  readonly valid: boolean;
  readonly code: VerifierCode;
  /** Set whenever the key was found (also when it is not valid); '' otherwise. */
  readonly keyId: string;
  readonly orgId: string;
  readonly workspaceId: string;
  readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly expireTime?: Date;
  /** Set for keys with a rate limit that reached that check (always decided by the server). */
  readonly rateLimit?: { readonly limit: number; readonly remaining: number; readonly resetTime: Date };
}

/** A VerifyKey answer as cached: the key's state and fields, and whether the server must still decide. */
export interface CachedAnswer {
  /** When the answer was current (this process's clock): see answerCurrentAt. */
  readonly read_at: number;
  readonly status: KeyStatus;
  readonly expireMs: number | null;
  /** null: not known, the answer stopped before the rate-limit check. */
  readonly rateLimited: boolean | null;
  readonly scopes: readonly string[];
  /** The key's VALID result, built once: what most lookups return, and the template of its other results. */
  readonly asValid: VerifierResult;
}

const CODE_NAMES: Record<VerifyCode, VerifierCode | undefined> = {
  [VerifyCode.VERIFY_CODE_UNSPECIFIED]: undefined,
  [VerifyCode.VERIFY_CODE_VALID]: 'VALID',
  [VerifyCode.VERIFY_CODE_MALFORMED]: 'MALFORMED',
  [VerifyCode.VERIFY_CODE_NOT_FOUND]: 'NOT_FOUND',
  [VerifyCode.VERIFY_CODE_EXPIRED]: 'EXPIRED',
  [VerifyCode.VERIFY_CODE_REVOKED]: 'REVOKED',
  [VerifyCode.VERIFY_CODE_ARCHIVED]: 'ARCHIVED',
  [VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE]: 'INSUFFICIENT_SCOPE',
  [VerifyCode.VERIFY_CODE_RATE_LIMITED]: 'RATE_LIMITED',
};

const KEY_STATE_CODES = { EXPIRED: 'EXPIRED', ARCHIVED: 'ARCHIVED', REVOKED: 'REVOKED' } as const;

const notFound = (code: 'MALFORMED' | 'NOT_FOUND'): VerifierResult =>
  Object.freeze({ valid: false, code, keyId: '', orgId: '', workspaceId: '', scopes: Object.freeze([]), metadata: Object.freeze({}) });
export const MALFORMED = notFound('MALFORMED');
export const NOT_FOUND = notFound('NOT_FOUND');

/** The answer as this client returns it; throws on a code this client does not know. */
export function toVerifierResult(res: VerifyKeyResponse): VerifierResult {
  const code = CODE_NAMES[res.code];
  if (!code) throw new Error(`VerifyKey answered an unknown code (${res.code})`);
  const r = res.rateLimit;
  return Object.freeze({
    valid: code === 'VALID',
    code,
    keyId: res.keyId,
    orgId: res.orgId,
    workspaceId: res.workspaceId,
    scopes: Object.freeze(res.scopes),
    metadata: Object.freeze(res.metadata),
    expireTime: res.expireTime,
    rateLimit: r && Object.freeze({ limit: r.limit, remaining: r.remaining, resetTime: r.resetTime ?? new Date(0) }),
  });
}

export const durationMs = (d: Duration | undefined): number => (d ? d.seconds * 1000 + Math.floor(d.nanos / 1e6) : 0);

/**
 * When an answer about a found key was current, on this process's clock: the start of the call
 * less the age the server gave for the key's state (its cache may be behind changes made through
 * other instances), or less `unknownAgeMs` when it gave none (a server from before
 * key_state_age, whose answers may be as old as its revocation bound).
 */
export function answerCurrentAt(res: VerifyKeyResponse, callStartedAt: number, unknownAgeMs: number): number {
  return callStartedAt - (res.keyStateAge ? durationMs(res.keyStateAge) : unknownAgeMs);
}

/**
 * What an answer tells about the key itself, for any scopes asked later: null for "no such
 * key", undefined when it tells nothing to keep (MALFORMED: this client's prefix is not the server's).
 */
export function cachedAnswer(res: VerifyKeyResponse, currentAt: number): CachedAnswer | null | undefined {
  const result = toVerifierResult(res);
  const base = { read_at: currentAt, expireMs: res.expireTime?.getTime() ?? null, scopes: result.scopes };
  const asValid = Object.freeze({ ...result, valid: true, code: 'VALID' as const, rateLimit: undefined });
  switch (result.code) {
    case 'MALFORMED':
      return undefined;
    case 'NOT_FOUND':
      return null;
    case 'REVOKED':
      return { ...base, asValid, status: 'revoked', rateLimited: null };
    case 'ARCHIVED':
      return { ...base, asValid, status: 'archived', rateLimited: null };
    case 'VALID':
      // The rate-limit check ran: rate_limit is set exactly for keys that have one.
      return { ...base, asValid, status: 'active', rateLimited: res.rateLimit !== undefined };
    case 'RATE_LIMITED':
      return { ...base, asValid, status: 'active', rateLimited: true };
    case 'EXPIRED':
    case 'INSUFFICIENT_SCOPE':
      return { ...base, asValid, status: 'active', rateLimited: null };
  }
}

/**
 * The answer for `scopes` now, in VerifyKey's order of checks; null when only the server can
 * give it (a key with a rate limit, or one not known to have none, that passed every other check).
 */
export function decide(a: CachedAnswer, scopes: readonly string[], now: number): VerifierResult | null {
  const state = keyState(a.status, a.expireMs, now);
  if (state !== 'ACTIVE') return Object.freeze({ ...a.asValid, valid: false, code: KEY_STATE_CODES[state] });
  for (const s of scopes)
    if (!a.scopes.includes(s)) return Object.freeze({ ...a.asValid, valid: false, code: 'INSUFFICIENT_SCOPE' as const });
  return a.rateLimited === false ? a.asValid : null;
}
