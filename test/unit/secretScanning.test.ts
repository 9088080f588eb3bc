// What the docs publish for secret scanners, held to the service's own parser: the README's
// pattern and the offline checksum check of docs/secret-scanning.md (run as written) accept the
// keys the service generates and refuse what parseSecret refuses. Read from the docs, so the
// docs cannot drift from src/domain/keyFormat.ts. No database, no server.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { generateSecret, parseSecret, type Environment } from '../../src/domain/keyFormat';

const ROOT = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The pattern for the default prefix: the backticked `\bsk_…` of the README. */
const PATTERN = /`(\\bsk_[^`]+)`/.exec(read('README.md'))?.[1];
/** The block that defines checksumMatches in docs/secret-scanning.md. */
const SNIPPET = /```js\n([\s\S]*?function checksumMatches[\s\S]*?)```/.exec(read('docs/secret-scanning.md'))?.[1];

/** The pattern as the docs say to derive it for another KEY_PREFIX. */
const patternFor = (prefix: string) => new RegExp(PATTERN!.replace('sk_', `${prefix}_`), 'g');
const findAll = (text: string, prefix = 'sk') => [...text.matchAll(patternFor(prefix))].map((m) => m[0]);

/** The documented check, evaluated as a script (its `require.main === module` line stays quiet). */
function documentedCheck(): (candidate: string) => boolean {
  return runInNewContext(`${SNIPPET!}\nchecksumMatches`, { require, module: {}, process, console }) as (c: string) => boolean;
}

const envArb = fc.constantFrom<Environment>('live', 'test');
const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{1,15}$/);

describe('docs for secret scanners', () => {
  it('the README publishes the pattern, the same one docs/secret-scanning.md shows', () => {
    expect(PATTERN).toBe('\\bsk_(?:live|test)_[0-9A-Za-z]{38}\\b');
    expect(read('docs/secret-scanning.md')).toContain(`\n${PATTERN!}\n`);
    expect(SNIPPET).toBeDefined();
  });

  it('the pattern finds every generated key in surrounding text, for any prefix derived as documented', () => {
    fc.assert(
      fc.property(prefixArb, envArb, fc.constantFrom(' ', '"', "'", '=', '\n', ':', '/'), (prefix, env, sep) => {
        const secret = generateSecret(prefix, env);
        expect(findAll(`token${sep}${secret}${sep}rest`, prefix)).toEqual([secret]);
      }),
    );
  });

  it.each([
    ['another prefix', (s: string) => `pk${s.slice(2)}`],
    ['the prefix glued to a word', (s: string) => `ask${s.slice(2)}`],
    ['the key glued to a word', (s: string) => `${s}x`],
    ['an unknown environment', (s: string) => s.replace('_live_', '_prod_')],
    ['one character short', (s: string) => s.slice(0, -1)],
    ['one character long', (s: string) => `${s}0`],
    ['a character outside base62', (s: string) => `${s.slice(0, 20)}-${s.slice(21)}`],
    ['an uppercase prefix', (s: string) => `SK${s.slice(2)}`],
  ])('the pattern does not match %s', (_what, nearMiss) => {
    const secret = generateSecret('sk', 'live');
    expect(findAll(secret)).toEqual([secret]);
    expect(findAll(` ${nearMiss(secret)} `)).toEqual([]);
  });

  it('the documented checksum check agrees with parseSecret on generated keys and on every one-character change of them', () => {
    const checksumMatches = documentedCheck();
    fc.assert(
      fc.property(envArb, fc.nat(), fc.constantFrom(...BASE62.split('')), (env, at, ch) => {
        const secret = generateSecret('sk', env);
        expect(checksumMatches(secret)).toBe(true);
        const i = 'sk_live_'.length + (at % 38);
        const changed = secret.slice(0, i) + ch + secret.slice(i + 1);
        // A candidate is a key when the pattern matches it whole and its checksum matches.
        const accepted = findAll(changed).length === 1 && checksumMatches(changed);
        expect(accepted).toBe(parseSecret(changed, 'sk') !== null);
        expect(accepted).toBe(changed === secret);
      }),
      { numRuns: 500 },
    );
  });
});
