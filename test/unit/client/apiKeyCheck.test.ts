// The HTTP key check's pure rules: which header carries the key, what each VerifyKey code answers,
// and that its refusals have the HTTP status REASON_STATUS gives their reasons.
import { checkKey, REFUSALS, type Verification, type Verifies } from '../../../src/client/http/apiKeyCheck';
import { VerifyCode } from '../../../src/gen/apikeys/v1/verify_service';
import { httpStatusOf } from '../../../src/transport/errors';

const NOW = Date.parse('2030-01-01T00:00:00Z');

/** A verifier answering `code` (and `extra`), recording what it was asked. */
function answering(code: VerifyCode, extra: Partial<Verification> = {}) {
  const asked: { secret: string; scopes: readonly string[] }[] = [];
  const verifier: Verifies = {
    verify: async (secret, scopes) => {
      asked.push({ secret, scopes });
      return { code, keyId: 'key_1', orgId: 'org_1', workspaceId: '', scopes: ['read'], metadata: {}, ...extra };
    },
  };
  return { verifier, asked };
}

const check = (verifier: Verifies, headers: Record<string, string | string[]>, scopes: string[] = []) =>
  checkKey(verifier, headers, scopes, () => NOW);

describe('HTTP key check', () => {
  it('gives each refusal the HTTP status and gRPC status name of REASON_STATUS', () => {
    for (const reason of Object.keys(REFUSALS) as (keyof typeof REFUSALS)[]) {
      expect({ reason, ...REFUSALS[reason] }).toEqual({ reason, ...httpStatusOf(reason) });
    }
  });

  it('takes the key from x-api-key or a Bearer authorization, and passes the required scopes on', async () => {
    const { verifier, asked } = answering(VerifyCode.VERIFY_CODE_VALID);
    expect(await check(verifier, { 'x-api-key': 'sk_a' }, ['read'])).toEqual({
      ok: true,
      identity: { keyId: 'key_1', orgId: 'org_1', workspaceId: '', scopes: ['read'], metadata: {} },
    });
    await check(verifier, { authorization: 'bearer sk_b' });
    expect(asked).toEqual([
      { secret: 'sk_a', scopes: ['read'] },
      { secret: 'sk_b', scopes: [] },
    ]);
  });

  it.each([
    ['no key', {}, 'UNAUTHENTICATED'],
    ['two keys', { 'x-api-key': 'sk_a', authorization: 'Bearer sk_b' }, 'UNAUTHENTICATED'],
    ['x-api-key twice, as an array', { 'x-api-key': ['sk_a', 'sk_b'] }, 'UNAUTHENTICATED'],
    ['another scheme', { authorization: 'Basic YTpi' }, 'INVALID_API_KEY'],
    ['a Bearer with a space in the key', { authorization: 'Bearer sk_a sk_b' }, 'INVALID_API_KEY'],
  ])('refuses %s without asking the verifier', async (_name, headers, reason) => {
    const { verifier, asked } = answering(VerifyCode.VERIFY_CODE_VALID);
    expect(await check(verifier, headers)).toMatchObject({ ok: false, refusal: { reason } });
    expect(asked).toEqual([]);
  });

  it.each([
    ['MALFORMED', VerifyCode.VERIFY_CODE_MALFORMED, 'INVALID_API_KEY'],
    ['NOT_FOUND', VerifyCode.VERIFY_CODE_NOT_FOUND, 'INVALID_API_KEY'],
    ['REVOKED', VerifyCode.VERIFY_CODE_REVOKED, 'INVALID_API_KEY'],
    ['ARCHIVED', VerifyCode.VERIFY_CODE_ARCHIVED, 'INVALID_API_KEY'],
    ['EXPIRED', VerifyCode.VERIFY_CODE_EXPIRED, 'INVALID_API_KEY'],
    ['UNSPECIFIED', VerifyCode.VERIFY_CODE_UNSPECIFIED, 'INVALID_API_KEY'],
    ['a code added after this client was built', 99 as unknown as VerifyCode, 'INVALID_API_KEY'],
    ['INSUFFICIENT_SCOPE', VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE, 'INSUFFICIENT_SCOPE'],
    ['RATE_LIMITED', VerifyCode.VERIFY_CODE_RATE_LIMITED, 'RATE_LIMITED'],
  ])('refuses %s as %s', async (_name, code, reason) => {
    expect(await check(answering(code).verifier, { 'x-api-key': 'sk_a' })).toMatchObject({ ok: false, refusal: { reason } });
  });

  it("rounds Retry-After up to whole seconds until the key's window resets, at least 1", async () => {
    const limited = (resetIn: number) =>
      answering(VerifyCode.VERIFY_CODE_RATE_LIMITED, { rateLimit: { limit: 5, remaining: 0, resetTime: new Date(NOW + resetIn) } })
        .verifier;
    const retryAfter = async (v: Verifies) => {
      const c = await check(v, { 'x-api-key': 'sk_a' });
      return c.ok ? undefined : c.refusal.retryAfterSeconds;
    };
    expect(await retryAfter(limited(1500))).toBe(2);
    expect(await retryAfter(limited(60_000))).toBe(60);
    expect(await retryAfter(limited(-10))).toBe(1);
    expect(await retryAfter(answering(VerifyCode.VERIFY_CODE_RATE_LIMITED).verifier)).toBe(1);
  });

  it('lets a failing verifier reject: the caller answers unavailable', async () => {
    const failing: Verifies = { verify: () => Promise.reject(new Error('14 UNAVAILABLE')) };
    await expect(check(failing, { 'x-api-key': 'sk_a' })).rejects.toThrow('UNAVAILABLE');
  });
});
