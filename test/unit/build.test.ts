import { execFileSync } from 'node:child_process';
import { join, relative, sep } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/**
 * `npm run build` compiles tsconfig.build.json into dist/, which the image ships whole. Excluding
 * a file is not enough to keep it out: tsc still compiles what an included file imports.
 */
describe('production build', () => {
  it('compiles the entry points and none of the development-only code', () => {
    const listed = execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--listFilesOnly'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const sources = listed
      .split('\n')
      .map((f) => relative(ROOT, f.trim()).split(sep).join('/'))
      .filter((f) => f.startsWith('src/'));
    expect(sources).toEqual(expect.arrayContaining(['src/main.ts', 'src/healthcheck.ts', 'src/cli/keyctl.ts']));
    expect(sources.filter((f) => /^src\/(dev\.ts|dev\/|devdb\/)/.test(f))).toEqual([]);
  });
});
