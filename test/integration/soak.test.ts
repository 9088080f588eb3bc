// A short run of bench/soak.ts: two service processes on their own FerretDB with 2 000 keys under
// paced mixed traffic for 90 s. The 10-minute run with 20 000 keys is `npx tsx bench/soak.ts`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

interface SoakReport {
  calls: number;
  unexpected: Record<string, number>;
  revocation: { lastValidAfterMs: number; firstRefusedAfterMs: number }[];
  rssMiB: { earlier: number; later: number }[];
  heapAfterGcMiB: { warm: number[]; end: number[] };
  dbIdleCpuPct: { before: number; after: number };
  serviceExits: (number | null)[];
}

/** Runs the soak script to its end; its own checks decide the exit code, the report is read too. */
function runSoak(env: Record<string, string>): Promise<{ code: number | null; output: string; report: SoakReport }> {
  const results = join(mkdtempSync(join(tmpdir(), 'apikeys-soak-')), 'soak.json');
  const { MONGODB_URI: _ownDatabase, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts'], {
    cwd: ROOT,
    env: { ...inherited, ...env, SOAK_RESULTS: results },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // Progress lines, so a CI log shows where a slow run is.
  const progress = (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  };
  child.stdout.on('data', progress);
  child.stderr.on('data', progress);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        resolve({ code, output, report: JSON.parse(readFileSync(results, 'utf8')) as SoakReport });
      } catch {
        reject(new Error(`the soak wrote no report (exit ${String(code)}):\n${output.slice(-4000)}`));
      }
    });
  });
}

describe('soak, short version', () => {
  it(
    '90 s of mixed traffic on two instances: every call answered as expected, revocation across instances within 1 s, no growth, an idle database',
    async () => {
      const { code, output, report } = await runSoak({
        SOAK_MINUTES: '1.5',
        SOAK_KEYS: '2000',
        SOAK_VERIFY_RATE: '100',
        SOAK_ADMIN_EVERY_MS: '3000',
        SOAK_PROBE_EVERY_MS: '10000',
        // The idle window stays the script's default, a whole retention-sweep interval (a 10 s
        // window held zero, one or two sweeps and measured anything from 2 % to 14 %).
        SOAK_SETTLE_SECONDS: '5',
      });
      expect({ code, tail: code === 0 ? '' : output.slice(-3000) }).toEqual({ code: 0, tail: '' });
      // The script's own checks passed; these make what they checked visible in the test.
      expect(report.unexpected).toEqual({});
      expect(report.calls).toBeGreaterThan(8_000);
      expect(report.serviceExits).toEqual([null, null]);
      expect(report.revocation.length).toBeGreaterThanOrEqual(5);
      for (const probe of report.revocation) expect(probe.lastValidAfterMs).toBeLessThanOrEqual(1_000);
      for (const { earlier, later } of report.rssMiB) expect(later).toBeLessThanOrEqual(earlier * 1.2);
      report.heapAfterGcMiB.end.forEach((end, i) => expect(end).toBeLessThanOrEqual(report.heapAfterGcMiB.warm[i] * 1.2));
      expect(report.dbIdleCpuPct.after).toBeLessThan(10);
    },
    9 * 60_000,
  );
});
