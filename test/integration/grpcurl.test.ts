// docs/grpcurl.md is a newcomer's first walk through the service; this runs it as written. The dev
// entry point (src/dev.ts, what `npm run dev` starts, here on this suite's database) prints the
// two `export` lines the page says to paste; every ```sh block then runs in order in one bash
// shell with a real grpcurl, and every ```json block must be what the block before it printed,
// apart from the values that differ on each run (ids, times, etags, secrets).
import { execFile, spawn, spawnSync, type ChildProcess, type ExecFileException } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';
import { testDb, type TestDatabase } from '../support/database';

const ROOT = join(__dirname, '..', '..');
const PAGE = 'docs/grpcurl.md';
const DOC_ADDRESS = 'localhost:50051';
const GRPCURL_MODULE = 'github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4';

/** grpcurl from tools/bin or PATH; otherwise installed into tools/bin with Go (first run only). */
function grpcurlDirectory(): string {
  const local = join(ROOT, 'tools', 'bin');
  if (existsSync(join(local, 'grpcurl'))) return local;
  const onPath = spawnSync('sh', ['-c', 'command -v grpcurl'], { encoding: 'utf8' });
  if (onPath.status === 0) return join(onPath.stdout.trim(), '..');
  const r = spawnSync('go', ['install', GRPCURL_MODULE], { env: { ...process.env, GOBIN: local }, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `${PAGE} needs grpcurl: install Go ≥ 1.24 (the suite installs ${GRPCURL_MODULE} into tools/bin), or put grpcurl on PATH.\n${r.stderr ?? r.error}`,
    );
  }
  return local;
}

/** The page's fenced blocks, in order. */
function fencedBlocks(markdown: string): { lang: string; body: string }[] {
  return [...markdown.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], body: m[2] }));
}

// Values that differ on every run: each must still have its documented shape.
const ID = /^(key|org|usr)_[0-9a-hjkmnp-tv-z]{26}$/;
const VOLATILE: Record<string, RegExp> = {
  id: ID,
  keyId: ID,
  orgId: ID,
  createdBy: ID,
  start: /^sk_test_[0-9A-Za-z]{4}$/,
  maskedKey: /^sk_test_[0-9A-Za-z]{4}…[0-9A-Za-z]{4}$/,
  fingerprint: /^[0-9a-f]{6}$/,
  createTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
  updateTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
  etag: /^[0-9A-Za-z_-]{8,}$/,
  secret: /^sk_test_[0-9A-Za-z]{38}$/,
  keyStateAge: /^\d+(\.\d+)?s$/,
};

/** `value` with each volatile field replaced by a marker, or by a note of the shape it lacks. */
function normalized(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalized);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      const shape = VOLATILE[k];
      if (!shape) return [k, normalized(v)];
      return [k, typeof v === 'string' && shape.test(v) ? `<${k}>` : `<${k} not matching ${String(shape)}: ${JSON.stringify(v)}>`];
    }),
  );
}

describe(`${PAGE}, run as written`, () => {
  let db: TestDatabase;
  let dev: ChildProcess | undefined;
  let devOutput = '';
  const exportLines: string[] = [];
  let port: number;
  let grpcurlDir: string;
  const page = readFileSync(join(ROOT, PAGE), 'utf8');
  const blocks = fencedBlocks(page);

  beforeAll(async () => {
    grpcurlDir = grpcurlDirectory();
    if (spawnSync('jq', ['--version']).status !== 0) throw new Error(`${PAGE} uses jq: install it (apt-get install jq, brew install jq)`);
    db = await testDb('grpcurl');
    port = await freeLoopbackPort();
    // As `npm run dev` runs it, with this suite's database instead of an ephemeral one.
    dev = spawn(process.execPath, ['--import', 'tsx', 'src/dev.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        MONGODB_URI: db.uri,
        MONGODB_DATABASE: db.dbName,
        GRPC_ADDR: `127.0.0.1:${port}`,
        METRICS_ADDR: 'off',
        HTTP_AUTH_ADDR: 'off',
      },
    });
    dev.stderr!.on('data', (d: Buffer) => (devOutput += d.toString()));
    await new Promise<void>((resolve, reject) => {
      dev!.once('exit', (code) => reject(new Error(`src/dev.ts exited (${String(code)}) before it was ready:\n${devOutput}`)));
      createInterface({ input: dev!.stdout! }).on('line', (line) => {
        devOutput += `${line}\n`;
        if (line.startsWith('export ')) exportLines.push(line);
        if (line.includes('try: grpcurl')) resolve(); // printed once the server listens
      });
    });
  }, 300_000);

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      const exited = new Promise((r) => dev!.once('exit', r));
      dev.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
    await db?.close();
  });

  it('shows the lines the dev entry point prints, as it prints them', () => {
    const shown = blocks.find((b) => b.lang === 'text')?.body ?? '';
    // `export TOKEN='eyJhbGciOiJIUzI1NiIs…'  # …`: the variable and the start of its value.
    const documented = [...shown.matchAll(/^(export \w+=')([^…']*)…'/gm)].map((m) => m[1] + m[2]);
    expect(documented.map((d) => d.split('=')[0])).toEqual(['export TOKEN', 'export VERIFY_TOKEN']);
    expect(documented.map((d) => exportLines.some((l) => l.startsWith(d)))).toEqual(documented.map(() => true));
  });

  it('runs every sh block in order, each json block being what the block before it printed', async () => {
    const sh = blocks.map((b, i) => ({ ...b, i })).filter((b) => b.lang === 'sh');
    expect(sh.length).toBeGreaterThan(5);
    const marker = (i: number) => `@@ block ${i} @@`;
    const script = [
      'set -euo pipefail',
      'exec 2>&1',
      ...exportLines, // pasted, as the page says
      ...sh.flatMap((b) => [`echo '${marker(b.i)}'`, b.body.replaceAll(DOC_ADDRESS, `localhost:${port}`)]),
      `echo '${marker(blocks.length)}'`,
    ].join('\n');
    const { stdout } = await promisify(execFile)('bash', ['-c', script], {
      cwd: ROOT,
      env: { PATH: `${grpcurlDir}:${process.env.PATH ?? ''}`, HOME: process.env.HOME },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: unknown) => {
      const { code, stdout } = err as ExecFileException & { stdout?: string };
      // stdout has stderr too (exec 2>&1), so it ends with the failing step's complaint.
      throw new Error(`a step of ${PAGE} failed (exit ${String(code)}); the output so far:\n${stdout ?? ''}`);
    });
    expect(stdout).toContain(marker(blocks.length)); // ran to the end

    // Each sh block's output: from its marker to the next.
    const output = new Map<number, string>();
    sh.forEach((b, n) => {
      const next = n + 1 < sh.length ? sh[n + 1].i : blocks.length;
      output.set(b.i, stdout.split(marker(b.i))[1].split(marker(next))[0].trim());
    });
    const outputOf = (command: string) => {
      const b = sh.find((s) => s.body.includes(command));
      if (!b) throw new Error(`${PAGE} no longer runs ${command}`);
      return output.get(b.i)!;
    };

    // The documented output, wherever the page shows one.
    const shown = blocks.flatMap((b, i) => (b.lang === 'json' ? [{ doc: JSON.parse(b.body) as unknown, shBlock: i - 1 }] : []));
    expect(shown.length).toBeGreaterThanOrEqual(3);
    for (const { doc, shBlock } of shown) {
      expect(blocks[shBlock].lang).toBe('sh');
      expect(normalized(JSON.parse(output.get(shBlock)!))).toEqual(normalized(doc));
    }

    // Steps whose output the page describes in words.
    expect(outputOf(' list\n')).toEqual(expect.stringContaining('apikeys.v1.VerifyService'));
    expect(outputOf('grpc.health.v1.Health/Check')).toContain('"status": "SERVING"');
    expect(outputOf('x-api-key: $SECRET')).toContain('"keys"');
    const afterRevoke = outputOf('RevokeKey');
    expect(afterRevoke).toContain('"code": "VERIFY_CODE_REVOKED"');
    expect(afterRevoke).toContain('"state": "KEY_STATE_REVOKED"');
  }, 120_000);
});
