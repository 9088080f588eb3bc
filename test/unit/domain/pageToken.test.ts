import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MAX_PAGE_TOKEN_LENGTH, type PagePosition, decodePageToken, encodePageToken } from '../../../src/domain/pageToken';
import { newId } from '../../../src/domain/ids';

const KEY = randomBytes(32);
const SCOPE = 'org=org_01j00000000000000000000000;revoked=0;archived=0';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const positionArb: fc.Arbitrary<PagePosition> = fc.record({
  t: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.constantFrom(0, Number.MAX_SAFE_INTEGER)),
  id: fc.oneof(
    fc.integer({ min: 0, max: 2 ** 48 - 1 }).map((t) => newId('key', t)),
    fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/),
  ),
});

describe('page token round trip', () => {
  it('decodes what it encodes, for any position and scope', () => {
    fc.assert(
      fc.property(positionArb, fc.string({ unit: 'binary', maxLength: 200 }), (position, scope) => {
        const token = encodePageToken(position, scope, KEY);
        expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(token.length).toBeLessThanOrEqual(MAX_PAGE_TOKEN_LENGTH);
        expect(decodePageToken(token, scope, KEY)).toEqual({ t: position.t, id: position.id });
      }),
    );
  });

  it('is opaque-ish: the token is not the plain JSON and carries no extra fields', () => {
    const position = { t: 1_700_000_000_000, id: newId('key'), secret: 'x' } as PagePosition;
    const token = encodePageToken(position, SCOPE, KEY);
    expect(token).not.toContain('{');
    expect(Buffer.from(token, 'base64url').toString('utf8')).not.toContain('secret');
    expect(decodePageToken(token, SCOPE, KEY)).toEqual({ t: position.t, id: position.id });
  });

  it('refuses to encode positions it could not decode', () => {
    const id = newId('key');
    for (const bad of [
      { t: -1, id },
      { t: 1.5, id },
      { t: Number.NaN, id },
      { t: 2 ** 53, id },
      { t: 1, id: '' },
      { t: 1, id: 'a'.repeat(129) },
      { t: 1, id: 'has space' },
      { t: '1', id },
    ]) {
      expect(() => encodePageToken(bad as unknown as PagePosition, SCOPE, KEY)).toThrow(RangeError);
    }
  });

  it('refuses a missing or short key', () => {
    const position = { t: 1, id: 'x' };
    expect(() => encodePageToken(position, SCOPE, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodePageToken(position, SCOPE, Buffer.alloc(15))).toThrow(RangeError);
    expect(() => decodePageToken('abc', SCOPE, Buffer.alloc(0))).toThrow(RangeError);
  });
});

describe('page token rejection', () => {
  const position: PagePosition = { t: 1_700_000_000_123, id: newId('key', 1_700_000_000_123) };
  const token = encodePageToken(position, SCOPE, KEY);

  it('rejects a token with any single character changed (property)', () => {
    fc.assert(
      fc.property(
        positionArb,
        fc.nat(),
        fc.oneof(fc.constantFrom(...B64URL.split('')), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' })),
        (pos, index, ch) => {
          const t = encodePageToken(pos, SCOPE, KEY);
          const i = index % t.length;
          fc.pre(ch !== t[i]);
          expect(decodePageToken(t.slice(0, i) + ch + t.slice(i + 1), SCOPE, KEY)).toBeNull();
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects every base64url substitution at every position, including the last char', () => {
    for (let i = 0; i < token.length; i++) {
      for (const ch of B64URL) {
        if (ch === token[i]) continue;
        expect(decodePageToken(token.slice(0, i) + ch + token.slice(i + 1), SCOPE, KEY)).toBeNull();
      }
    }
  });

  it('rejects truncated, extended and padded tokens', () => {
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), (n) => {
        expect(decodePageToken(token.slice(0, n), SCOPE, KEY)).toBeNull();
      }),
    );
    expect(decodePageToken(`${token}A`, SCOPE, KEY)).toBeNull();
    expect(decodePageToken(`${token}=`, SCOPE, KEY)).toBeNull();
    expect(decodePageToken(`${token}\n`, SCOPE, KEY)).toBeNull();
    expect(decodePageToken(` ${token}`, SCOPE, KEY)).toBeNull();
  });

  it('rejects a token used with a different scope (other org or filters)', () => {
    expect(decodePageToken(token, SCOPE, KEY)).toEqual(position);
    expect(decodePageToken(token, SCOPE.replace('revoked=0', 'revoked=1'), KEY)).toBeNull();
    expect(decodePageToken(token, 'org=org_other;revoked=0;archived=0', KEY)).toBeNull();
    expect(decodePageToken(token, '', KEY)).toBeNull();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (scope) => {
        fc.pre(scope !== SCOPE);
        expect(decodePageToken(token, scope, KEY)).toBeNull();
      }),
    );
  });

  it('rejects a token checked with a different key', () => {
    expect(decodePageToken(token, SCOPE, randomBytes(32))).toBeNull();
    const flipped = Buffer.from(KEY);
    flipped[0] = flipped[0] ^ 1;
    expect(decodePageToken(token, SCOPE, flipped)).toBeNull();
  });

  it('rejects a forged token (valid shape, MAC not made with the key)', () => {
    const payload = Buffer.from(JSON.stringify({ t: 0, id: position.id }));
    const forged = Buffer.concat([randomBytes(16), payload]).toString('base64url');
    expect(decodePageToken(forged, SCOPE, KEY)).toBeNull();
  });

  it('rejects garbage', () => {
    for (const garbage of ['', 'abc', '!!!!', '{"t":1,"id":"x"}', 'eyJ0IjoxLCJpZCI6IngifQ', 'A'.repeat(100), '\u0000', 'é']) {
      expect(decodePageToken(garbage, SCOPE, KEY)).toBeNull();
    }
    expect(decodePageToken(undefined as unknown as string, SCOPE, KEY)).toBeNull();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (s) => {
        expect(decodePageToken(s, SCOPE, KEY)).toBeNull();
      }),
    );
  });

  it('rejects oversized tokens before decoding them', () => {
    expect(decodePageToken('A'.repeat(MAX_PAGE_TOKEN_LENGTH + 1), SCOPE, KEY)).toBeNull();
    expect(decodePageToken(token + 'A'.repeat(MAX_PAGE_TOKEN_LENGTH), SCOPE, KEY)).toBeNull();
    expect(decodePageToken('A'.repeat(10_000_000), SCOPE, KEY)).toBeNull();
  });
});
