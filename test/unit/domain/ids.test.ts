import fc from 'fast-check';
import { ID_PATTERNS, type IdKind, encodeBase32, isId, newId, uuidV7Bytes } from '../../../src/domain/ids';

const KINDS: IdKind[] = ['key', 'org', 'usr', 'evt'];
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const MAX_TS = 2 ** 48 - 1;

describe('newId', () => {
  it.each(KINDS)('produces a %s id matching its pattern', (kind) => {
    const id = newId(kind);
    expect(id).toMatch(new RegExp(`^${kind}_[0-9a-hjkmnp-tv-z]{26}$`));
    expect(ID_PATTERNS[kind].test(id)).toBe(true);
    expect(isId(kind, id)).toBe(true);
    // Two leading zero padding bits: the first base32 char is 0–7.
    expect('01234567').toContain(id[kind.length + 1]);
  });

  it('produces 10k unique ids (also within the same millisecond)', () => {
    const now = Date.now();
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) ids.add(newId('key'));
    for (let i = 0; i < 5000; i++) ids.add(newId('key', now));
    expect(ids.size).toBe(10000);
  });

  it('sorts ids from a later millisecond after ids from an earlier one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TS - 1 }), fc.integer({ min: 1, max: 2 ** 40 }), (t1, delta) => {
        const t2 = Math.min(t1 + delta, MAX_TS);
        const a = newId('key', t1);
        const b = newId('key', t2);
        expect(a < b).toBe(true);
        expect([b, a].sort()).toEqual([a, b]);
      }),
      { numRuns: 500 },
    );
  });

  it('is order-preserving at adjacent milliseconds (smallest difference)', () => {
    const base = 1_700_000_000_000;
    const ids = Array.from({ length: 200 }, (_, i) => newId('evt', base + i));
    const shuffled = [...ids].reverse().sort();
    expect(shuffled).toEqual(ids);
  });

  it('sets the UUIDv7 version and variant bits and the big-endian timestamp', () => {
    const t = 0x0123456789ab;
    const bytes = uuidV7Bytes(t);
    expect(bytes.length).toBe(16);
    expect(bytes.readUIntBE(0, 6)).toBe(t);
    expect(bytes[6] >> 4).toBe(7);
    expect(bytes[8] >> 6).toBe(0b10);
  });

  it('rejects timestamps that do not fit in 48 bits', () => {
    expect(() => newId('key', -1)).toThrow(RangeError);
    expect(() => newId('key', 2 ** 48)).toThrow(RangeError);
    expect(() => newId('key', 1.5)).toThrow(RangeError);
    expect(() => newId('key', Number.NaN)).toThrow(RangeError);
    expect(() => newId('nope' as IdKind)).toThrow(TypeError);
  });
});

describe('encodeBase32', () => {
  it('encodes all-zero and all-one values at the extremes of the alphabet', () => {
    expect(encodeBase32(Buffer.alloc(16, 0))).toBe('0'.repeat(26));
    expect(encodeBase32(Buffer.alloc(16, 0xff))).toBe('7' + 'z'.repeat(25));
  });

  it('preserves numeric order for arbitrary 128-bit values', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (x, y) => {
        const byteOrder = Buffer.compare(Buffer.from(x), Buffer.from(y));
        const a = encodeBase32(x);
        const b = encodeBase32(y);
        const stringOrder = a < b ? -1 : a > b ? 1 : 0;
        expect(stringOrder).toBe(byteOrder);
        expect(a.split('').every((c) => ALPHABET.includes(c))).toBe(true);
      }),
    );
  });
});

describe('isId', () => {
  const valid = newId('key');
  const body = valid.slice(4);

  it('accepts a valid id of the right kind only', () => {
    expect(isId('key', valid)).toBe(true);
    for (const kind of KINDS.filter((k) => k !== 'key')) {
      expect(isId(kind, valid)).toBe(false);
      expect(isId(kind, `${kind}_${body}`)).toBe(true);
    }
  });

  it('rejects uppercase', () => {
    expect(isId('key', `key_${body.slice(0, 25).toUpperCase()}Z`)).toBe(false);
    expect(isId('key', `KEY_${body}`)).toBe(false);
    expect(isId('key', `key_A${body.slice(1)}`)).toBe(false);
  });

  it('rejects the wrong length', () => {
    expect(isId('key', `key_${body.slice(1)}`)).toBe(false);
    expect(isId('key', `key_${body}0`)).toBe(false);
    expect(isId('key', 'key_')).toBe(false);
    expect(isId('key', '')).toBe(false);
  });

  it.each(['i', 'l', 'o', 'u'])('rejects the excluded letter %s at any position', (letter) => {
    for (let i = 0; i < 26; i++) {
      expect(isId('key', `key_${body.slice(0, i)}${letter}${body.slice(i + 1)}`)).toBe(false);
    }
  });

  it('rejects surrounding whitespace, newlines and missing separators', () => {
    expect(isId('key', ` ${valid}`)).toBe(false);
    expect(isId('key', `${valid}\n`)).toBe(false);
    expect(isId('key', `key${body}`)).toBe(false);
    expect(isId('key', `key-${body}`)).toBe(false);
  });

  it('rejects any single-character change to the prefix, and any outside the alphabet in the body', () => {
    const anyChar = fc.oneof(fc.constantFrom(...'ilouILOU_-KEY 0z'.split('')), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }));
    fc.assert(
      fc.property(fc.nat({ max: valid.length - 1 }), anyChar, (pos, ch) => {
        fc.pre(ch !== valid[pos] && (pos < 4 || !ALPHABET.includes(ch)));
        const mutated = valid.slice(0, pos) + ch + valid.slice(pos + 1);
        expect(isId('key', mutated)).toBe(false);
      }),
    );
  });
});
