import { crc32 } from 'node:zlib';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  type Environment,
  MAX_SECRET_LENGTH,
  checksumOf,
  crc32Of,
  describeSecret,
  generateSecret,
  hashSecret,
  isValidPrefix,
  parseSecret,
  randomBase62,
} from '../../../src/domain/keyFormat';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ENVS: Environment[] = ['live', 'test'];
const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{1,15}$/);
const envArb = fc.constantFrom<Environment>(...ENVS);
/** Any single UTF-16 unit, plus lookalikes and separators that are likeliest to slip through. */
const anyUnitArb = fc.oneof(
  fc.constantFrom(...BASE62.split(''), '_', '-', ' ', '\n', '\0', '…', 'é'),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
);

describe('generateSecret / parseSecret round trip', () => {
  it.each(ENVS)('generates a %s secret that parses back to its environment', (env) => {
    const secret = generateSecret('sk', env);
    expect(secret).toMatch(new RegExp(`^sk_${env}_[0-9A-Za-z]{38}$`));
    expect(secret).toHaveLength(2 + 44);
    expect(parseSecret(secret, 'sk')).toEqual({ environment: env });
  });

  it('round-trips for any valid prefix and environment', () => {
    fc.assert(
      fc.property(prefixArb, envArb, (prefix, env) => {
        const secret = generateSecret(prefix, env);
        expect(secret.startsWith(`${prefix}_${env}_`)).toBe(true);
        expect(secret.length).toBeLessThanOrEqual(MAX_SECRET_LENGTH);
        expect(parseSecret(secret, prefix)).toEqual({ environment: env });
      }),
    );
  });

  it('has a 32-char base62 random part followed by the base62 CRC32 of everything before it', () => {
    const secret = generateSecret('sk', 'live');
    const random = secret.slice('sk_live_'.length, -6);
    expect(random).toMatch(/^[0-9A-Za-z]{32}$/);
    const checksum = secret.slice(-6);
    // Decode the base62 checksum independently and compare with zlib's CRC32.
    const decoded = checksum.split('').reduce((n, c) => n * 62 + BASE62.indexOf(c), 0);
    expect(decoded).toBe(crc32(secret.slice(0, -6)));
  });

  it('returns a frozen result, shared between calls', () => {
    const parsed = parseSecret(generateSecret('sk', 'live'), 'sk');
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(parseSecret(generateSecret('sk', 'live'), 'sk')).toBe(parsed);
  });

  it('never generates the same secret twice', () => {
    const secrets = new Set(Array.from({ length: 2000 }, () => generateSecret('sk', 'test')));
    expect(secrets.size).toBe(2000);
  });

  it('rejects an invalid prefix or environment when generating', () => {
    expect(() => generateSecret('SK', 'live')).toThrow(RangeError);
    expect(() => generateSecret('s', 'live')).toThrow(RangeError);
    expect(() => generateSecret('sk_x', 'live')).toThrow(RangeError);
    expect(() => generateSecret('sk', 'prod' as Environment)).toThrow(RangeError);
  });
});

describe('parseSecret rejections', () => {
  const secret = generateSecret('sk', 'live');

  it('rejects ANY single-character substitution (base62 or any UTF-16 unit) at any position', () => {
    fc.assert(
      fc.property(fc.nat({ max: secret.length - 1 }), anyUnitArb, (pos, ch) => {
        fc.pre(ch !== secret[pos]);
        const mutated = secret.slice(0, pos) + ch + secret.slice(pos + 1);
        expect(parseSecret(mutated, 'sk')).toBeNull();
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects every base62 substitution at every position of freshly generated secrets', () => {
    fc.assert(
      fc.property(prefixArb, envArb, (prefix, env) => {
        const s = generateSecret(prefix, env);
        for (let pos = 0; pos < s.length; pos++) {
          for (const ch of BASE62) {
            if (ch === s[pos]) continue;
            expect(parseSecret(s.slice(0, pos) + ch + s.slice(pos + 1), prefix)).toBeNull();
          }
        }
      }),
      { numRuns: 5 },
    );
  });

  it('rejects a substitution by any code point, even one that changes the UTF-16 length', () => {
    fc.assert(
      fc.property(fc.nat({ max: secret.length - 1 }), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }), (pos, ch) => {
        fc.pre(ch !== secret[pos]);
        expect(parseSecret(secret.slice(0, pos) + ch + secret.slice(pos + 1), 'sk')).toBeNull();
      }),
    );
  });

  it('rejects random strings, including ones shaped like a secret', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80, unit: 'binary' }), (s) => {
        expect(parseSecret(s, 'sk')).toBeNull();
      }),
    );
    // Right shape, random checksum: passes only with probability ~2^-32.
    fc.assert(
      fc.property(envArb, fc.stringMatching(/^[0-9A-Za-z]{38}$/), (env, body) => {
        const candidate = `sk_${env}_${body}`;
        fc.pre(checksumOf(candidate.slice(0, -6)) !== candidate.slice(-6));
        expect(parseSecret(candidate, 'sk')).toBeNull();
      }),
    );
  });

  it('rejects a secret with a different prefix than the configured one', () => {
    expect(parseSecret(secret, 'pk')).toBeNull();
    expect(parseSecret(secret, 's')).toBeNull();
    expect(parseSecret(secret, 'skx')).toBeNull();
    expect(parseSecret(generateSecret('skx', 'live'), 'sk')).toBeNull();
    // Even with a correct checksum for the other prefix.
    expect(parseSecret(generateSecret('pk', 'test'), 'pk')).not.toBeNull();
    expect(parseSecret(generateSecret('pk', 'test'), 'sk')).toBeNull();
  });

  it('rejects oversized, truncated and extended input', () => {
    expect(parseSecret('x'.repeat(1_000_000), 'sk')).toBeNull();
    expect(parseSecret(secret + secret, 'sk')).toBeNull();
    expect(parseSecret(secret.slice(0, -1), 'sk')).toBeNull();
    expect(parseSecret(`${secret}0`, 'sk')).toBeNull();
    expect(parseSecret(` ${secret}`, 'sk')).toBeNull();
    expect(parseSecret(`${secret}\n`, 'sk')).toBeNull();
    expect(parseSecret('', 'sk')).toBeNull();
  });

  it('rejects an environment other than live/test', () => {
    const body = 'A'.repeat(32);
    for (const env of ['prod', 'LIVE', 'tst_', 'Test']) {
      const s = `sk_${env}_${body}`;
      expect(parseSecret(s + checksumOf(s), 'sk')).toBeNull();
    }
    const ok = `sk_test_${body}`;
    expect(parseSecret(ok + checksumOf(ok), 'sk')).toEqual({ environment: 'test' });
  });

  it('rejects non-string input without throwing', () => {
    expect(parseSecret(undefined as unknown as string, 'sk')).toBeNull();
    expect(parseSecret(42 as unknown as string, 'sk')).toBeNull();
  });
});

describe('crc32Of', () => {
  it("equals zlib's crc32 on any string and any leading part of it", () => {
    const unicodeArb = fc.oneof(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: anyUnitArb }), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(unicodeArb, fc.nat(), (text, n) => {
        const end = n % (text.length + 1);
        expect(crc32Of(text, text.length)).toBe(crc32(text));
        expect(crc32Of(text, end)).toBe(crc32(text.slice(0, end)));
      }),
      { numRuns: 2000 },
    );
  });

  it("equals zlib's crc32 on generated secrets", () => {
    fc.assert(
      fc.property(prefixArb, envArb, (prefix, env) => {
        const secret = generateSecret(prefix, env);
        expect(crc32Of(secret, secret.length)).toBe(crc32(secret));
        expect(crc32Of(secret, secret.length - 6)).toBe(crc32(secret.slice(0, -6)));
      }),
    );
  });
});

/** The regex-and-zlib parseSecret this module used to have: the table-driven one must agree with it on every input. */
function oracleParseSecret(secret: string, prefix: string): { environment: Environment } | null {
  const BODY_PATTERN = /^[0-9A-Za-z]+$/;
  if (typeof secret !== 'string' || typeof prefix !== 'string') return null;
  if (secret.length > MAX_SECRET_LENGTH || secret.length !== prefix.length + 44) return null;
  if (!secret.startsWith(prefix) || secret[prefix.length] !== '_') return null;
  const envStart = prefix.length + 1;
  const environment = secret.slice(envStart, envStart + 4);
  if ((environment !== 'live' && environment !== 'test') || secret[envStart + 4] !== '_') return null;
  const random = secret.slice(envStart + 5, secret.length - 6);
  const checksum = secret.slice(secret.length - 6);
  if (!BODY_PATTERN.test(random) || !BODY_PATTERN.test(checksum)) return null;
  if (oracleChecksumOf(secret.slice(0, secret.length - 6)) !== checksum) return null;
  return { environment };
}

/** The checksum as the oracle computed it: zlib's crc32 (of UTF-8 bytes), as 6 base62 chars. */
function oracleChecksumOf(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

describe('parseSecret against the regex-based oracle', () => {
  /** Any single char: one UTF-16 unit (lone surrogates included) or one code point (astral ones are two units). */
  const charArb = fc.oneof(anyUnitArb, fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }));
  /** Valid prefixes mostly, then the edge cases parseSecret does not rule out itself: empty, '_', upper case, non-ASCII, too long. */
  const anyPrefixArb = fc.oneof(
    { arbitrary: prefixArb, weight: 4 },
    fc.constantFrom('', 's', 'sk_', '_', 'SK', 'sk_live', 'skü', 'a'.repeat(16), 'a'.repeat(17)),
    fc.string({ maxLength: 18, unit: charArb }),
  );
  const base62Arb = (n: number) => fc.stringMatching(new RegExp(`^[0-9A-Za-z]{${n}}$`));
  const unitsArb = (n: number) => fc.string({ minLength: n, maxLength: n, unit: anyUnitArb });
  /** `{prefix}{sep}{env}{sep}{random}` + the oracle's checksum of it: valid unless a part is off. */
  const withChecksumArb = fc
    .record({
      prefix: anyPrefixArb,
      sep1: fc.oneof({ arbitrary: fc.constant('_'), weight: 8 }, charArb),
      env: fc.oneof({ arbitrary: envArb, weight: 8 }, fc.constantFrom('LIVE', 'Test', 'prod'), unitsArb(4)),
      sep2: fc.oneof({ arbitrary: fc.constant('_'), weight: 8 }, charArb),
      random: fc.oneof({ arbitrary: base62Arb(32), weight: 4 }, unitsArb(32), base62Arb(31), base62Arb(33)),
    })
    .map(({ prefix, sep1, env, sep2, random }) => {
      const body = `${prefix}${sep1}${env}${sep2}${random}`;
      return { secret: body + oracleChecksumOf(body), prefix };
    });
  const caseArb = fc.oneof(
    { arbitrary: withChecksumArb, weight: 3 },
    // Parsed with another prefix than its own.
    fc.tuple(withChecksumArb, anyPrefixArb).map(([c, prefix]) => ({ secret: c.secret, prefix })),
    // One char replaced by any char.
    fc.tuple(withChecksumArb, fc.nat(), charArb).map(([c, n, ch]) => {
      const pos = n % Math.max(c.secret.length, 1);
      return { secret: c.secret.slice(0, pos) + ch + c.secret.slice(pos + 1), prefix: c.prefix };
    }),
    // One char replaced by one with the same low byte, which a masked lookup or byte-wise CRC would take for it.
    fc.tuple(withChecksumArb, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([c, n, k]) => {
      const pos = n % Math.max(c.secret.length, 1);
      const ch = String.fromCharCode((c.secret.charCodeAt(pos) + 256 * k) & 0xffff);
      return { secret: c.secret.slice(0, pos) + ch + c.secret.slice(pos + 1), prefix: c.prefix };
    }),
    // Truncated or extended at either end.
    fc.tuple(withChecksumArb, fc.nat(), fc.string({ minLength: 1, maxLength: 8, unit: charArb })).map(([c, n, extra]) => {
      const variants = [
        c.secret.slice(0, n % (c.secret.length + 1)),
        c.secret.slice(n % (c.secret.length + 1)),
        c.secret + extra,
        extra + c.secret,
      ];
      return { secret: variants[n % 4], prefix: c.prefix };
    }),
    // Random strings of the right length, shaped like a secret or not.
    anyPrefixArb.chain((prefix) =>
      fc
        .oneof(
          unitsArb(prefix.length + 44),
          fc.tuple(envArb, unitsArb(38)).map(([env, rest]) => `${prefix}_${env}_${rest}`),
          fc.tuple(envArb, base62Arb(38)).map(([env, rest]) => `${prefix}_${env}_${rest}`),
        )
        .map((secret) => ({ secret, prefix })),
    ),
  );

  it('accepts and refuses exactly what the oracle does', () => {
    const seen = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(caseArb, ({ secret, prefix }) => {
        const expected = oracleParseSecret(secret, prefix);
        expect(parseSecret(secret, prefix)).toEqual(expected);
        seen[expected ? 'accepted' : 'refused']++;
      }),
      { numRuns: 3000 },
    );
    // Both outcomes were exercised, so agreement means something.
    expect(seen.accepted).toBeGreaterThan(200);
    expect(seen.refused).toBeGreaterThan(200);
  });

  it('agrees on a prefix outside the allowed charset, where the checksum covers its UTF-8 bytes', () => {
    for (const prefix of ['skü', 'k€y', '🔑', '\ud800x', 'x\udc00']) {
      const body = `${prefix}_test_${'A'.repeat(32)}`;
      const secret = body + oracleChecksumOf(body);
      expect(oracleParseSecret(secret, prefix)).toEqual({ environment: 'test' });
      expect(parseSecret(secret, prefix)).toEqual({ environment: 'test' });
      expect(parseSecret(secret.slice(0, -1) + (secret.endsWith('0') ? '1' : '0'), prefix)).toBeNull();
    }
  });
});

describe('hashSecret / describeSecret', () => {
  it('hashes to 64 lowercase hex chars (SHA-256)', () => {
    const secret = generateSecret('sk', 'live');
    const hash = hashSecret(secret);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(hashSecret(generateSecret('sk', 'live'))).not.toBe(hash);
  });

  it('describes a secret with start, masked key and fingerprint of the right shape', () => {
    fc.assert(
      fc.property(prefixArb, envArb, (prefix, env) => {
        const secret = generateSecret(prefix, env);
        const d = describeSecret(secret);
        expect(d.hash).toBe(hashSecret(secret));
        expect(d.start).toBe(secret.slice(0, prefix.length + 6 + 4));
        expect(d.start).toMatch(new RegExp(`^${prefix}_${env}_[0-9A-Za-z]{4}$`));
        expect(d.maskedKey).toBe(`${d.start}…${secret.slice(-4)}`);
        expect(d.maskedKey).toMatch(new RegExp(`^${prefix}_${env}_[0-9A-Za-z]{4}…[0-9A-Za-z]{4}$`));
        expect(d.fingerprint).toBe(d.hash.slice(0, 6));
        expect(d.fingerprint).toMatch(/^[0-9a-f]{6}$/);
        // The masked form must not contain the secret.
        expect(d.maskedKey.includes(secret.slice(prefix.length + 6, -4))).toBe(false);
      }),
    );
  });

  it('matches the documented example shape', () => {
    const d = describeSecret('sk_live_abc1' + 'x'.repeat(28) + 'wxyz00');
    expect(d.start).toBe('sk_live_abc1');
    expect(d.maskedKey).toBe('sk_live_abc1…yz00');
  });

  it('refuses to describe something that is not shaped like a secret', () => {
    expect(() => describeSecret('hello')).toThrow(TypeError);
    expect(() => describeSecret('sk_prod_' + 'a'.repeat(38))).toThrow(TypeError);
  });
});

describe('isValidPrefix', () => {
  it.each(['sk', 'ffy', 'a1', 'abcdefghijklmnop'])('accepts %p', (p) => expect(isValidPrefix(p)).toBe(true));
  it.each(['', 's', '1k', 'Sk', 'sk_', 's-k', 'abcdefghijklmnopq', 'sk\n'])('rejects %p', (p) => expect(isValidPrefix(p)).toBe(false));
});

describe('randomBase62', () => {
  it('returns exactly the requested number of base62 chars', () => {
    for (const n of [0, 1, 32, 500]) expect(randomBase62(n)).toMatch(new RegExp(`^[0-9A-Za-z]{${n}}$`));
  });

  it('is roughly uniform (no modulo bias toward the first characters)', () => {
    // 62,000 draws: each char expected 1000 times. Modulo-256 bias would give the first 8
    // chars ~5/4 of the others (≈1230 vs ≈984); a uniform source stays well within ±200.
    const counts = new Map<string, number>();
    for (const c of randomBase62(62_000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const first8 = '01234567'.split('').reduce((n, c) => n + counts.get(c)!, 0) / 8;
    expect(first8).toBeLessThan(1100);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(800);
      expect(n).toBeLessThan(1200);
    }
  });
});
