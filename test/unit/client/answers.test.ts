import { answerCurrentAt, cachedAnswer, decide, toVerifierResult, type CachedAnswer } from '../../../src/client/answers';
import { VerifyCode, VerifyKeyResponse } from '../../../src/gen/apikeys/v1/verify_service';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const HOUR = 3_600_000;

const response = (over: Partial<VerifyKeyResponse>): VerifyKeyResponse =>
  VerifyKeyResponse.fromPartial({
    keyId: 'key_a',
    orgId: 'org_a',
    workspaceId: 'ws_a',
    scopes: ['read', 'write'],
    metadata: { tier: 'pro' },
    expireTime: new Date(NOW + HOUR),
    ...over,
  });
const answerOf = (over: Partial<VerifyKeyResponse>): CachedAnswer => {
  const a = cachedAnswer(response(over), NOW);
  if (!a) throw new Error('expected a cached answer');
  return a;
};
const codeOf = (a: CachedAnswer, scopes: string[], now = NOW) => decide(a, scopes, now)?.code ?? 'ASK THE SERVER';

describe('client answers', () => {
  it('returns VerifyKey’s answer field for field, with the code by name', () => {
    const res = response({ valid: true, code: VerifyCode.VERIFY_CODE_VALID });
    expect(toVerifierResult(res)).toEqual({
      valid: true,
      code: 'VALID',
      keyId: 'key_a',
      orgId: 'org_a',
      workspaceId: 'ws_a',
      scopes: ['read', 'write'],
      metadata: { tier: 'pro' },
      expireTime: new Date(NOW + HOUR),
      rateLimit: undefined,
    });
    expect(() => toVerifierResult(response({ code: VerifyCode.VERIFY_CODE_UNSPECIFIED }))).toThrow(/unknown code/);
  });

  it('answers a key known to have no rate limit locally, in VerifyKey’s order of checks', () => {
    const a = answerOf({ valid: true, code: VerifyCode.VERIFY_CODE_VALID });
    expect(decide(a, ['read'], NOW)).toBe(decide(a, [], NOW)); // the one VALID result, shared
    expect(decide(a, ['read'], NOW)).toMatchObject({ valid: true, code: 'VALID', keyId: 'key_a', scopes: ['read', 'write'] });
    expect(codeOf(a, ['admin'])).toBe('INSUFFICIENT_SCOPE');
    expect(codeOf(a, ['admin'], NOW + HOUR)).toBe('EXPIRED'); // expiry is exclusive, and before scopes
    expect(codeOf(a, [], NOW + HOUR - 1)).toBe('VALID');
  });

  it('leaves to the server what only it can decide: a rate-limited key, or one whose limit the answer did not show', () => {
    const limited = answerOf({
      valid: true,
      code: VerifyCode.VERIFY_CODE_VALID,
      rateLimit: { limit: 5, remaining: 4, resetTime: new Date(NOW) },
    });
    expect(codeOf(limited, [])).toBe('ASK THE SERVER');
    expect(codeOf(limited, ['admin'])).toBe('INSUFFICIENT_SCOPE');
    const throttled = answerOf({
      code: VerifyCode.VERIFY_CODE_RATE_LIMITED,
      rateLimit: { limit: 5, remaining: 0, resetTime: new Date(NOW) },
    });
    expect(codeOf(throttled, [])).toBe('ASK THE SERVER');
    // INSUFFICIENT_SCOPE and EXPIRED stop before the rate-limit check: whether there is one is not known.
    const narrow = answerOf({ code: VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE });
    expect(codeOf(narrow, ['admin'])).toBe('INSUFFICIENT_SCOPE');
    expect(codeOf(narrow, ['read'])).toBe('ASK THE SERVER');
    const expired = answerOf({ code: VerifyCode.VERIFY_CODE_EXPIRED, expireTime: new Date(NOW - 1) });
    expect(codeOf(expired, [])).toBe('EXPIRED');
  });

  it('dates an answer by the server’s age of the key state, or by the whole bound when a server gave none', () => {
    const aged = response({ code: VerifyCode.VERIFY_CODE_VALID, keyStateAge: { seconds: 0, nanos: 420_000_000 } });
    expect(answerCurrentAt(aged, NOW, 1_000)).toBe(NOW - 420);
    expect(answerCurrentAt(response({ code: VerifyCode.VERIFY_CODE_VALID, keyStateAge: { seconds: 0, nanos: 0 } }), NOW, 1_000)).toBe(NOW);
    expect(answerCurrentAt(response({ code: VerifyCode.VERIFY_CODE_VALID }), NOW, 1_000)).toBe(NOW - 1_000);
  });

  it('keeps revoked and archived keys as such, with their fields', () => {
    for (const [code, name] of [
      [VerifyCode.VERIFY_CODE_REVOKED, 'REVOKED'],
      [VerifyCode.VERIFY_CODE_ARCHIVED, 'ARCHIVED'],
    ] as const) {
      const a = answerOf({ code });
      expect(decide(a, ['admin'], NOW + 2 * HOUR)).toMatchObject({ valid: false, code: name, keyId: 'key_a', orgId: 'org_a' });
    }
  });

  it('caches "no such key" as absent, and nothing for MALFORMED (the server’s prefix is not this client’s)', () => {
    expect(cachedAnswer(response({ code: VerifyCode.VERIFY_CODE_NOT_FOUND, keyId: '' }), NOW)).toBeNull();
    expect(cachedAnswer(response({ code: VerifyCode.VERIFY_CODE_MALFORMED, keyId: '' }), NOW)).toBeUndefined();
  });

  it('hands out frozen results, so one caller cannot change another’s', () => {
    const a = answerOf({ valid: true, code: VerifyCode.VERIFY_CODE_VALID });
    const r = decide(a, [], NOW)!;
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.scopes)).toBe(true);
    expect(Object.isFrozen(r.metadata)).toBe(true);
  });
});
