// The client ships inside this package as `apikeys/client`: the export map must point where the
// production build (tsconfig.build.json) puts it, and the module must stay free of server code.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as client from '../../../src/client/verifier';

const ROOT = join(__dirname, '..', '..', '..');
const ENTRY = 'src/client/verifier.ts';
const readJson = (file: string): unknown => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));

/** Relative modules `file` loads at run time (type-only imports emit nothing), transitively. */
function runtimeImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const source = readFileSync(join(ROOT, file), 'utf8');
  for (const m of source.matchAll(/^import\s+(?!type\b)[^;]*?from\s+['"](\.[^'"]+)['"]/gms)) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), m[1]));
    runtimeImports(existsSync(join(ROOT, `${target}.ts`)) ? `${target}.ts` : `${target}/index.ts`, seen);
  }
  return seen;
}

describe('apikeys/client', () => {
  it('is exported where the production build compiles src/client/verifier.ts, with its types', () => {
    const pkg = readJson('package.json') as { exports: Record<string, { types: string; default: string }> };
    const build = readJson('tsconfig.build.json') as { compilerOptions: { rootDir: string; outDir: string; declaration: boolean } };
    const out = `./${join(build.compilerOptions.outDir, relative(build.compilerOptions.rootDir, ENTRY)).replace(/\.ts$/, '')}`;
    expect(pkg.exports['./client']).toEqual({ types: `${out}.d.ts`, default: `${out}.js` });
    expect(build.compilerOptions.declaration).toBe(true);
  });

  it('exports KeyVerifier', () => {
    expect(typeof client.KeyVerifier).toBe('function');
  });

  it('loads only client code, generated messages and pure domain modules: no transport, storage, config or app', () => {
    const loaded = [...runtimeImports(ENTRY)].sort();
    const allowedDomain = [
      'errors',
      'ids',
      'keyCache',
      'keyFormat',
      'keyState',
      'secretFormats',
      'usageRecorder',
      'utcDays',
      'validation',
    ].map((m) => `src/domain/${m}.ts`);
    expect(loaded.filter((f) => !f.startsWith('src/client/') && !f.startsWith('src/gen/') && !allowedDomain.includes(f))).toEqual([]);
    expect(loaded).toEqual(expect.arrayContaining(['src/domain/keyFormat.ts', 'src/gen/apikeys/v1/verify_service.ts']));
  });
});
