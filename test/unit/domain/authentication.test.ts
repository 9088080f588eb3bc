// The Authenticator's token rules that the integration matrix (one HS256 secret, no issuer or
// audience) does not reach: issuer/audience, algorithms, JWKS files, staff detection, foreign formats.
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUserTokenKeys } from '../../../src/auth/jwtKeys';
import type { Config } from '../../../src/config/config';
import { Authenticator, type AuthenticatorSettings, type Credentials } from '../../../src/domain/authentication';
import { DomainError } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import { compileForeignFormats } from '../../../src/domain/secretFormats';
import type { Verifier } from '../../../src/domain/verification';
import { FORMATS, foreignSecret } from '../../support/foreignFormats';

const secret = randomBytes(32).toString('hex');
const orgId = newId('org');

/** Settings as configured: the JWT key (the HS256 `secret` unless given) is loaded as the service loads it. */
type TestSettings = Partial<AuthenticatorSettings> & Pick<Config['auth'], 'jwtSecret' | 'jwks'>;

function authenticator(settings: TestSettings = {}, verify = jest.fn(async () => ({ code: 'NOT_FOUND' }))) {
  const { jwtSecret, jwks, ...rest } = { jwtSecret: secret, ...settings };
  const a = new Authenticator(
    {
      keyPrefix: 'sk',
      jwtMaxAgeSeconds: 86_400,
      verifyTokens: [],
      staffEmailDomains: ['staff.example'],
      ...rest,
      userTokenKeys: loadUserTokenKeys({ jwtSecret, jwks }),
    },
    { verify } as unknown as Verifier,
  );
  return { a, verify };
}

/** The interceptor's two steps: who is calling, then on which organization the call acts. */
const authenticate = async (a: Authenticator, c: Credentials) => a.effectiveOrganization(await a.principalOf(c), c.organizationId);

const creds = (c: Partial<Credentials>): Credentials => ({ authorization: [], apiKey: [], organizationId: [], ...c });
const bearer = (token: string, organizationId: string[] = []) => creds({ authorization: [`Bearer ${token}`], organizationId });

/** `iat`: seconds since the epoch, false to leave it out; now by default. */
function sign(claims: JWTPayload, opts: { alg?: string; key?: Parameters<SignJWT['sign']>[0]; exp?: boolean; iat?: number | false } = {}) {
  const jwt = new SignJWT({ org_id: orgId, role: 'admin', ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256' })
    .setSubject(newId('usr'));
  if (opts.iat !== false) jwt.setIssuedAt(opts.iat);
  if (opts.exp !== false) jwt.setExpirationTime('5m');
  return jwt.sign(opts.key ?? new TextEncoder().encode(secret));
}

/** "OK" or the DomainError reason. */
const result = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (e: unknown) => (e instanceof DomainError ? e.reason : String(e)),
  );

describe('user tokens', () => {
  it('accepts HS256 with the shared secret, and no other algorithm with it', async () => {
    const { a } = authenticator();
    expect(await result(authenticate(a, bearer(await sign({}))))).toBe('OK');
    expect(await result(authenticate(a, bearer(await sign({}, { alg: 'HS512' }))))).toBe('INVALID_TOKEN');
  });

  it('requires exp', async () => {
    const { a } = authenticator();
    expect(await result(authenticate(a, bearer(await sign({}, { exp: false }))))).toBe('INVALID_TOKEN');
  });

  it('checks issuer and audience when configured', async () => {
    const { a } = authenticator({ jwtIssuer: 'https://idp.example', jwtAudience: 'apikeys' });
    const cases: Array<[JWTPayload, string]> = [
      [{ iss: 'https://idp.example', aud: 'apikeys' }, 'OK'],
      [{ iss: 'https://idp.example', aud: ['other', 'apikeys'] }, 'OK'],
      [{ iss: 'https://evil.example', aud: 'apikeys' }, 'INVALID_TOKEN'],
      [{ iss: 'https://idp.example', aud: 'other' }, 'INVALID_TOKEN'],
      [{}, 'INVALID_TOKEN'],
    ];
    for (const [claims, expected] of cases) {
      expect([claims, await result(authenticate(a, bearer(await sign(claims))))]).toEqual([claims, expected]);
    }
  });

  it('verifies with a JWKS file, and refuses tokens of other keys or the HS256 secret', async () => {
    const mine = await generateKeyPair('ES256');
    const theirs = await generateKeyPair('ES256');
    const file = join(mkdtempSync(join(tmpdir(), 'jwks-')), 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(mine.publicKey)), alg: 'ES256', kid: 'k1' }] }));
    const { a } = authenticator({ jwks: file, jwtSecret: undefined });
    const es256 = (key: CryptoKey) => sign({}, { alg: 'ES256', key });
    expect(await result(authenticate(a, bearer(await es256(mine.privateKey))))).toBe('OK');
    expect(await result(authenticate(a, bearer(await es256(theirs.privateKey))))).toBe('INVALID_TOKEN');
    expect(await result(authenticate(a, bearer(await sign({}))))).toBe('INVALID_TOKEN');
  });

  it('refuses tokens issued longer ago than the maximum age, or that do not say when they were issued', async () => {
    const { a } = authenticator({ jwtMaxAgeSeconds: 3600 });
    const now = Math.floor(Date.now() / 1000);
    expect(await result(authenticate(a, bearer(await sign({}, { iat: now - 3590 }))))).toBe('OK');
    const old = authenticate(a, bearer(await sign({}, { iat: now - 3610 })));
    await expect(old).rejects.toMatchObject({ reason: 'TOKEN_EXPIRED', message: expect.stringContaining('3600 seconds') });
    expect(await result(authenticate(a, bearer(await sign({}, { iat: false }))))).toBe('INVALID_TOKEN');
    expect(await result(authenticate(a, bearer(await sign({}, { iat: now + 600 }))))).toBe('INVALID_TOKEN');
  });

  it('refuses user tokens when no JWT key is configured', async () => {
    const { a } = authenticator({ jwtSecret: undefined });
    expect(await result(authenticate(a, bearer(await sign({}))))).toBe('INVALID_TOKEN');
  });
});

describe('staff', () => {
  it.each([
    ['ops@staff.example', true, true],
    ['OPS@Staff.Example', true, true],
    ['ops@staff.example', false, false],
    ['ops@sub.staff.example', true, false],
    ['ops@staff.example.evil', true, false],
    ['a@staff.example@evil.example', true, false],
    ['staff.example', true, false],
    [undefined, true, false],
  ])('%s (email_verified %s) is staff: %s', async (email, verified, staff) => {
    const { a } = authenticator();
    const token = await sign({ email, email_verified: verified });
    const target = newId('org');
    expect(await result(authenticate(a, bearer(token, [target])))).toBe(staff ? 'OK' : 'ACTING_AS_FORBIDDEN');
  });

  it('act on the target organization with the header, on their own without it', async () => {
    const { a } = authenticator();
    const token = await sign({ email: 'ops@staff.example', email_verified: true });
    const target = newId('org');
    expect(await authenticate(a, bearer(token, [target]))).toMatchObject({ orgId: target, actingAs: true });
    expect(await authenticate(a, bearer(token, [orgId]))).toMatchObject({ orgId, actingAs: false });
    expect(await authenticate(a, bearer(token))).toMatchObject({ orgId, actingAs: false });
    expect(await result(authenticate(a, bearer(token, [target, target])))).toBe('INVALID_ORGANIZATION_ID');
  });
});

describe('staff email domains compare as ASCII only', () => {
  it.each([
    ['alice@ops.work', true],
    ['Alice@OPS.WORK', true],
    // KELVIN SIGN: toLowerCase turns it into "k", so the old comparison took this for ops.work.
    ['alice@ops.wor\u212A', false],
    ['al\u00efce@ops.work', false],
  ])('%s is staff: %s', async (email, staff) => {
    const { a } = authenticator({ staffEmailDomains: ['ops.work'] });
    const token = await sign({ email, email_verified: true });
    expect(await result(authenticate(a, bearer(token, [newId('org')])))).toBe(staff ? 'OK' : 'ACTING_AS_FORBIDDEN');
  });
});

describe('credentials', () => {
  it('takes exactly one, and does not look up an oversized API key', async () => {
    const { a, verify } = authenticator();
    const token = await sign({});
    expect(await result(authenticate(a, creds({ authorization: [`Bearer ${token}`], apiKey: ['x'] })))).toBe('UNAUTHENTICATED');
    expect(await result(authenticate(a, creds({ apiKey: ['a', 'b'] })))).toBe('UNAUTHENTICATED');
    expect(await result(authenticate(a, creds({ apiKey: ['k'.repeat(8193)] })))).toBe('INVALID_API_KEY');
    expect(verify).not.toHaveBeenCalled();
  });

  it('tells service tokens apart, by index, without naming them', async () => {
    const tokens = [randomBytes(24).toString('hex'), randomBytes(24).toString('hex')];
    const { a } = authenticator({ verifyTokens: tokens });
    expect(await authenticate(a, bearer(tokens[1]))).toMatchObject({ principal: { kind: 'service', id: 'service:2' }, orgId: '' });
    expect(await result(authenticate(a, bearer(`${tokens[0]}x`)))).toBe('INVALID_TOKEN');
  });
});

describe('imported keys as bearer tokens (FOREIGN_KEY_FORMATS)', () => {
  const foreign = compileForeignFormats([FORMATS.fnp]).formats;

  it('takes a bearer token in a foreign format for an API key, and looks it up', async () => {
    const { a, verify } = authenticator({ foreignFormats: foreign });
    const key = foreignSecret('fnp');
    expect(await result(a.principalOf(bearer(key)))).toBe('INVALID_API_KEY');
    expect(verify).toHaveBeenCalledWith(key, [], { enforceRateLimit: false });
  });

  it('without the format, the same token is no API key (INVALID_TOKEN, no lookup)', async () => {
    const { a, verify } = authenticator();
    expect(await result(a.principalOf(bearer(foreignSecret('fnp'))))).toBe('INVALID_TOKEN');
    expect(verify).not.toHaveBeenCalled();
  });

  it('still takes a service token that happens to fit a foreign pattern for the service', async () => {
    const token = foreignSecret('fnp');
    const { a, verify } = authenticator({ foreignFormats: foreign, verifyTokens: [token] });
    expect(await a.principalOf(bearer(token))).toEqual({ kind: 'service', id: 'service:1' });
    expect(verify).not.toHaveBeenCalled();
  });
});
