import { generateSecret, hashSecret } from '../../../src/domain/keyFormat';
import {
  MAX_FOREIGN_FORMATS,
  MAX_ANY_SECRET_LENGTH,
  MAX_FOREIGN_SECRET_LENGTH,
  classifySecret,
  formatOf,
  compileForeignFormats,
  parseForeignFormats,
  type SecretFormats,
} from '../../../src/domain/secretFormats';
import { FOREIGN_KEY_FORMATS, FORMATS, foreignSecret } from '../../support/foreignFormats';

const compiled = (specs: unknown) => {
  const r = compileForeignFormats(specs);
  expect(r.problems).toEqual([]);
  return r.formats;
};
const problemsOf = (json: string) => parseForeignFormats(json).problems;

describe('parseForeignFormats (FOREIGN_KEY_FORMATS)', () => {
  it('compiles the documented formats, in order, anchored', () => {
    const { formats, problems } = parseForeignFormats(FOREIGN_KEY_FORMATS);
    expect(problems).toEqual([]);
    expect(formats.map((f) => [f.name, f.prefix])).toEqual([
      ['ffy', 'ffy_'],
      ['fnp', 'fnp_'],
      ['stripe', 'sk_'],
    ]);
    expect(formats[1].regex.source).toBe('^(?:fnp_[0-9a-f]{32})$');
  });

  it('takes an empty list as no formats', () => {
    expect(parseForeignFormats('[]')).toEqual({ formats: [], problems: [] });
  });

  it.each([
    ['invalid JSON', '[{"name": "x",', /^not valid JSON: /],
    ['not an array', '{"name": "x"}', /^must be a JSON array/],
    ['an item that is not an object', '["ffy"]', /^\[0\]: must be an object/],
    ['an unknown field', JSON.stringify([{ ...FORMATS.fnp, env: 'live' }]), /^\[0\]: unknown field\(s\) "env"/],
    ['a bad name', JSON.stringify([{ ...FORMATS.fnp, name: 'Has Space' }]), /^\[0\]\.name: must be/],
    ['a bad prefix (regex characters)', JSON.stringify([{ ...FORMATS.fnp, prefix: 'fn.' }]), /^\[0\]\.prefix: must be/],
    ['a missing pattern', JSON.stringify([{ name: 'x', prefix: 'x_' }]), /^\[0\]\.pattern: must be a regular expression/],
    [
      'a pattern that does not compile',
      JSON.stringify([{ ...FORMATS.fnp, pattern: 'fnp_[0-9a-f{32}' }]),
      /^\[0\]\.pattern: does not compile/,
    ],
    // Wrapped unchecked, this would become ^(?:x_a)|(.*)$: anything ending anywhere would match.
    [
      'a pattern that would close the anchoring group',
      JSON.stringify([{ name: 'x', prefix: 'x_', pattern: 'x_a)|(.*' }]),
      /^\[0\]\.pattern: does not compile/,
    ],
    [
      'a prefix the pattern does not begin with',
      JSON.stringify([{ ...FORMATS.fnp, pattern: 'fmp_[0-9a-f]{32}' }]),
      /^\[0\]\.pattern: must begin with the prefix "fnp_"/,
    ],
    [
      'a prefix whose last character the pattern makes optional',
      JSON.stringify([{ name: 'x', prefix: 'x_', pattern: 'x_?[a-z]+' }]),
      /^\[0\]\.pattern: must begin with the prefix/,
    ],
  ])('refuses %s', (_what, json, problem) => {
    const problems = problemsOf(json);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it('refuses duplicate names, naming the second', () => {
    expect(problemsOf(JSON.stringify([FORMATS.fnp, { ...FORMATS.ffy, name: 'fnp' }]))).toEqual(['[1].name: duplicate name "fnp"']);
  });

  it('lists every problem of every format at once; a valid format beside them still compiles', () => {
    const r = parseForeignFormats(JSON.stringify([{ name: 'A', prefix: '', pattern: '(' }, FORMATS.fnp]));
    expect(r.problems.map((p) => p.split(':')[0])).toEqual(['[0].name', '[0].prefix', '[0].pattern']);
    expect(r.formats.map((f) => f.name)).toEqual(['fnp']);
  });

  it(`refuses more than ${MAX_FOREIGN_FORMATS} formats`, () => {
    const many = Array.from({ length: MAX_FOREIGN_FORMATS + 1 }, (_, i) => ({ name: `f${i}`, prefix: `f${i}_`, pattern: `f${i}_[a-z]+` }));
    expect(problemsOf(JSON.stringify(many))).toEqual([`at most ${MAX_FOREIGN_FORMATS} formats`]);
  });
});

describe('classifySecret', () => {
  const formats: SecretFormats = { keyPrefix: 'sk', foreign: compiled(Object.values(FORMATS)) };

  it('takes our own format first, even where a foreign pattern (sk_live_…) also fits it', () => {
    const ours = generateSecret('sk', 'test');
    expect(formats.foreign[2].regex.test(ours)).toBe(true);
    expect(classifySecret(ours, formats)).toEqual({ hash: hashSecret(ours), environment: 'test', format: null });
  });

  it.each([
    ['ffy', 'live'],
    ['ffy', 'test'],
    ['stripe', 'live'],
    ['stripe', 'test'],
  ] as const)('matches %s %s keys, with the environment their pattern captures', (format, environment) => {
    const secret = foreignSecret(format, environment);
    expect(classifySecret(secret, formats)).toEqual({ hash: hashSecret(secret), environment, format });
  });

  it('matches a format without an environment group, leaving the environment unsaid', () => {
    const secret = foreignSecret('fnp');
    expect(classifySecret(secret, formats)).toEqual({ hash: hashSecret(secret), environment: undefined, format: 'fnp' });
  });

  it('a stripe-style key of our length whose checksum is wrong is stripe, by the same hash', () => {
    const ours = generateSecret('sk', 'live');
    const notOurs = ours.slice(0, -1) + (ours.endsWith('a') ? 'b' : 'a');
    expect(classifySecret(notOurs, formats)).toMatchObject({ hash: hashSecret(notOurs), format: 'stripe' });
  });

  it.each([
    ['garbage in a foreign prefix', 'ffy_live_0OIl'],
    ['a body character the format excludes (base58 has no 0)', `ffy_live_${'0'.repeat(30)}`],
    ['an unknown environment', `ffy_prod_${'a'.repeat(30)}`],
    ['uppercase hex', `fnp_${'A'.repeat(32)}`],
    ['a match with a suffix (anchored)', `${foreignSecret('fnp')}0`],
    ['a match after the prefix (anchored at the start too)', `fnp_${foreignSecret('fnp')}`],
    ['a stripe body too short', `sk_live_${'a'.repeat(23)}`],
    ['the empty string', ''],
  ])('answers null (MALFORMED) for %s', (_what, secret) => {
    expect(classifySecret(secret, formats)).toBeNull();
    expect(formatOf(secret, formats)).toBeNull();
  });

  it('formatOf is classifySecret without the hash', () => {
    const secrets = [generateSecret('sk', 'live'), foreignSecret('ffy', 'test'), foreignSecret('fnp'), foreignSecret('stripe', 'live')];
    for (const secret of secrets) {
      const { hash, ...format } = classifySecret(secret, formats)!;
      expect(hash).toBe(hashSecret(secret));
      expect(formatOf(secret, formats)).toEqual(format);
    }
  });

  it(`no format takes a secret longer than MAX_ANY_SECRET_LENGTH (${MAX_ANY_SECRET_LENGTH}), ours with the longest prefix included`, () => {
    const longest = generateSecret('a'.repeat(16), 'live');
    expect(longest.length).toBeLessThanOrEqual(MAX_ANY_SECRET_LENGTH);
    expect(MAX_FOREIGN_SECRET_LENGTH).toBeLessThanOrEqual(MAX_ANY_SECRET_LENGTH);
  });

  it('answers null for no foreign formats configured', () => {
    expect(classifySecret(foreignSecret('fnp'), { keyPrefix: 'sk', foreign: [] })).toBeNull();
  });

  it(`never runs a pattern on a secret longer than ${MAX_FOREIGN_SECRET_LENGTH} characters`, () => {
    const [long] = compiled([{ name: 'long', prefix: 'long_', pattern: 'long_[a-z]+' }]);
    const spy = jest.spyOn(long.regex, 'exec');
    const atBound = `long_${'a'.repeat(MAX_FOREIGN_SECRET_LENGTH - 5)}`;
    expect(classifySecret(atBound, { keyPrefix: 'sk', foreign: [long] })).toMatchObject({ format: 'long' });
    expect(classifySecret(`${atBound}a`, { keyPrefix: 'sk', foreign: [long] })).toBeNull();
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('checks the prefix before the pattern', () => {
    const [fnp] = compiled([FORMATS.fnp]);
    const spy = jest.spyOn(fnp.regex, 'exec');
    expect(classifySecret(`fnq_${'a'.repeat(32)}`, { keyPrefix: 'sk', foreign: [fnp] })).toBeNull();
    expect(spy).not.toHaveBeenCalled();
  });
});
