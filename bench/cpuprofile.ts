/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by self time: which functions the CPU was in.
 * `npx tsx bench/cpuprofile.ts <file.cpuprofile> [top=15]`; `npm run bench -- --profile` uses it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

interface Frame {
  function: string;
  where: string;
  ms: number;
  /** Of the busy time. */
  pct: number;
}

export interface ProfileSummary {
  /** CPU time sampled, idle excluded (ms). */
  busyMs: number;
  idleMs: number;
  /** Functions by self time. */
  frames: Frame[];
  /** Self time by file (package, for dependencies; Node's own modules by name). */
  files: { file: string; ms: number; pct: number }[];
  /** Our functions (dist/, or src/ when run from source) by inclusive time: themselves and everything they called. */
  ours: Frame[];
}

const ROOT = join(__dirname, '..');

/** file:///…/node_modules/@grpc/grpc-js/build/src/server.js → @grpc/grpc-js/build/src/server.js */
function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  return path.startsWith(ROOT) ? path.slice(ROOT.length + 1) : path;
}

/** A dependency's files count as the package; (native) and V8's pseudo-frames as themselves. */
function fileOf(where: string, fn: string): string {
  if (!where) return fn.startsWith('(') ? fn : '(native)';
  const file = where.replace(/:\d+$/, '');
  const pkg = /^(@[^/]+\/[^/]+|[^/.][^/]*)\/(build|lib|dist|index)/.exec(file);
  return pkg && !/^(dist|src)\//.test(file) ? pkg[1] : file;
}

const top = <T extends { us: number }>(m: Map<string, T>, n: number, busyUs: number) =>
  [...m.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map(({ us, ...rest }) => ({ ...rest, ms: Math.round(us / 1000), pct: +((us / busyUs) * 100).toFixed(1) }));

export function summariseProfile(file: string, n = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const frameOf = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return { function: functionName || '(anonymous)', where: url ? `${shortUrl(url)}:${lineNumber + 1}` : '' };
  };
  const self = new Map<string, { function: string; where: string; us: number }>();
  const files = new Map<string, { file: string; us: number }>();
  const inclusive = new Map<string, { function: string; where: string; us: number }>();
  const add = <T extends { us: number }>(m: Map<string, T>, key: string, init: () => Omit<T, 'us'>, us: number) => {
    const e = m.get(key) ?? ({ ...init(), us: 0 } as T);
    e.us += us;
    m.set(key, e);
  };
  let idleUs = 0;
  let busyUs = 0;
  // Every sample counts for the mean interval. Not the gap to the next sample: on a busy machine
  // the process is sometimes descheduled between samples, most often in a system call, and that
  // frame would take the whole gap.
  const us = (p.endTime - p.startTime) / p.samples.length;
  p.samples.forEach((id) => {
    const f = frameOf(id);
    if (f.function === '(idle)') {
      idleUs += us;
      return;
    }
    busyUs += us;
    add(self, `${f.function}@${f.where}`, () => f, us);
    add(files, fileOf(f.where, f.function), () => ({ file: fileOf(f.where, f.function) }), us);
    // Each of our functions on the stack once, however deep it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const g = frameOf(at);
      const key = `${g.function}@${g.where}`;
      if (!/^(dist|src)\//.test(g.where) || seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, () => g, us);
    }
  });
  return {
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    frames: top(self, n, busyUs),
    files: top(files, n, busyUs),
    ours: top(inclusive, n, busyUs),
  };
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: npx tsx bench/cpuprofile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const s = summariseProfile(file, Number(top ?? 15));
  process.stdout.write(`busy ${s.busyMs} ms, idle ${s.idleMs} ms; by self time:\n`);
  console.table(s.frames);
  process.stdout.write('self time by file or package:\n');
  console.table(s.files);
  process.stdout.write('our functions by inclusive time:\n');
  console.table(s.ours);
}
