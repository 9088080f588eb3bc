// The docs are part of the contract with gateway authors and operators: the README's error table
// must be REASON_STATUS exactly (reasons sharing a status share a row); docs/configuration.md's table and .env.example must name every
// variable that src/config/config.ts reads, and the README's shorter table no other, with the same
// defaults; every relative link in the docs must lead somewhere. No database, no server: it only
// reads files.
import { status } from '@grpc/grpc-js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REASON_STATUS } from '../../src/transport/errors';
import { tableRows as markdownTableRows } from '../support/markdown';

const ROOT = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

const unquote = (cell: string) =>
  cell
    .trim()
    .replace(/^`(.*)`$/, '$1')
    .trim();

/** The body rows of the first table in `file` whose header row is exactly `header`. */
const tableRows = (file: string, header: string[]) => markdownTableRows(read(file), header, file);

/** The table as it belongs in the README, for pasting when this test fails: reasons sharing a code and HTTP status share a row. */
function expectedErrorTable(): string {
  const rows = new Map<string, string[]>();
  for (const [reason, s] of Object.entries(REASON_STATUS)) {
    const key = `\`${status[s.code]}\` | ${s.http}`;
    rows.set(key, [...(rows.get(key) ?? []), `\`${reason}\``]);
  }
  return [
    '| Reason | gRPC code | HTTP |',
    '|---|---|---|',
    ...[...rows].map(([key, reasons]) => `| ${reasons.join(', ')} | ${key} |`),
  ].join('\n');
}

/** Every variable in the zod schema of src/config/config.ts (`  NAME: z…` lines inside `z.object({`). */
function configVariables(): string[] {
  const source = read('src/config/config.ts');
  const body = /const schema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source)?.[1];
  if (!body) throw new Error('src/config/config.ts: could not find `const schema = z.object({ … });`');
  const names = [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]);
  if (names.length === 0) throw new Error('src/config/config.ts: no variables found in the schema');
  return names.sort();
}

describe('README', () => {
  const readme = read('README.md');

  it('starts with the two commands that work on a fresh machine', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));
    expect(firstBlock).toMatch(/^npm ci && npm run dev\b/m);
    expect(firstBlock).toMatch(/^npm test\b/m);
  });

  describe('error table', () => {
    const rows = tableRows('README.md', ['Reason', 'gRPC code', 'HTTP']);
    const documented = rows.flatMap(([reasons, code, http]) =>
      reasons.split(',').map((reason) => ({ reason: unquote(reason), code: unquote(code), http: unquote(http) })),
    );
    const hint = `\nThe README's error table must be exactly:\n\n${expectedErrorTable()}\n`;

    it('has one row per reason, no duplicates', () => {
      const reasons = documented.map((r) => r.reason);
      const duplicates = reasons.filter((r, i) => reasons.indexOf(r) !== i);
      expect({ duplicates, hint: duplicates.length ? hint : '' }).toEqual({ duplicates: [], hint: '' });
    });

    it('lists every reason of REASON_STATUS and nothing else', () => {
      const documentedSet = new Set(documented.map((r) => r.reason));
      const missing = Object.keys(REASON_STATUS).filter((r) => !documentedSet.has(r));
      const extra = [...documentedSet].filter((r) => !(r in REASON_STATUS));
      const ok = missing.length === 0 && extra.length === 0;
      expect({ missing, extra, hint: ok ? '' : hint }).toEqual({ missing: [], extra: [], hint: '' });
    });

    it('gives each reason the gRPC code name and HTTP status of REASON_STATUS', () => {
      const wrong = documented
        .filter((r) => r.reason in REASON_STATUS)
        .map((r) => {
          const s = REASON_STATUS[r.reason as keyof typeof REASON_STATUS];
          return { ...r, expected: { code: status[s.code], http: String(s.http) } };
        })
        .filter((r) => r.code !== r.expected.code || r.http !== r.expected.http)
        .map((r) => `${r.reason}: README says ${r.code} / ${r.http}, REASON_STATUS says ${r.expected.code} / ${r.expected.http}`);
      expect({ wrong, hint: wrong.length ? hint : '' }).toEqual({ wrong: [], hint: '' });
    });

    it('groups reasons by status in the order of REASON_STATUS', () => {
      expect({ table: rows.map((r) => `| ${r.join(' | ')} |`).join('\n') }).toEqual({
        table: expectedErrorTable().split('\n').slice(2).join('\n'),
      });
    });
  });

  it("docs/configuration.md's table names every variable of src/config/config.ts, and no other", () => {
    const documented = tableRows('docs/configuration.md', ['Variable', 'Default', 'Meaning'])
      .map(([name]) => unquote(name))
      .sort();
    expect(documented).toEqual(configVariables());
  });

  it("the README's configuration table is a part of docs/configuration.md's, with the same defaults", () => {
    const full = new Map(
      tableRows('docs/configuration.md', ['Variable', 'Default', 'Meaning']).map(([name, dflt]) => [unquote(name), dflt]),
    );
    const short = tableRows('README.md', ['Variable', 'Default', 'What for']).map(([name, dflt]) => [unquote(name), dflt]);
    expect(short.length).toBeGreaterThan(0);
    expect(short.filter(([name, dflt]) => full.get(name) !== dflt)).toEqual([]);
  });

  it('.env.example names every variable of src/config/config.ts, and no other', () => {
    const env = read('.env.example');
    const names = [...env.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect([...new Set(names)].sort()).toEqual(configVariables());
  });
});

/** README.md, bench/README.md and every markdown file under docs/. */
function markdownFiles(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? under(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    );
  return ['README.md', 'bench/README.md', ...under('docs')];
}

/** The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

describe('links between the docs', () => {
  it.each(markdownFiles())('%s: every relative link leads to a file, and to a heading in it', (file) => {
    const text = read(file).replace(/^```[\s\S]*?^```$/gm, ''); // code is not links
    const broken = [...text.matchAll(/\]\(([^)\s]+)\)/g)]
      .map((m) => m[1])
      .filter((target) => !/^[a-z]+:/.test(target))
      .filter((target) => {
        const [path, anchor] = target.split('#');
        const resolved = path ? relative(ROOT, join(ROOT, dirname(file), path)) : file;
        if (!existsSync(join(ROOT, resolved))) return true;
        if (!anchor) return false;
        const headings = [...read(resolved).matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1]));
        return !headings.includes(anchor);
      });
    expect(broken).toEqual([]);
  });
});
