// Prints the markdown tables of docs/indexes.md from the shapes a test run recorded in
// .tmp-index-audit/ (run the integration suite first: `npx jest --runInBand test/integration`):
//   npx tsx test/support/indexAudit/report.ts
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditShape, collectionNames, declaredIndexes, describeKey, indexesOn, type IndexSpec } from './indexes';
import { OUTPUT_DIR, type RecordingFile } from './recorder';
import { describeConjunct, describeSort } from './shapes';

export const INDEX_TABLE_HEADER = ['collection', 'index', 'key', 'serves'];
export const SHAPE_TABLE_HEADER = ['collection', 'command', 'filter', 'sort', 'index', 'filtered after the index', 'sent from'];

interface MergedShape {
  file: RecordingFile['shapes'][number];
  commands: Set<string>;
  callSites: Set<string>;
}

const code = (s: string) => `\`${s}\``;

export function reportMarkdown(files: RecordingFile[], declared: IndexSpec[]): string {
  const shapes = new Map<string, MergedShape>();
  for (const f of files) {
    for (const s of f.shapes) {
      const merged = shapes.get(s.key) ?? { file: s, commands: new Set<string>(), callSites: new Set<string>() };
      s.commands.forEach((c) => merged.commands.add(c));
      // Function names only: line numbers would date the table at every edit.
      s.callSites.forEach((c) => merged.callSites.add(c.replace(/ \(.*\)$/, '')));
      shapes.set(s.key, merged);
    }
  }
  const rows = [...shapes.values()].sort((a, b) => a.file.key.localeCompare(b.file.key));
  const uses = new Map<string, number>();
  const shapeRows = rows.map(({ file, commands, callSites }) => {
    const verdict = auditShape(file.shape, declared, file.inPoints);
    const index: string[] = [];
    const residual: string[] = [];
    const serving = new Set<string>();
    for (const b of verdict.branches) {
      if ('plan' in b) {
        serving.add(`${file.shape.collection}.${b.plan.index}`);
        index.push(code(b.plan.index) + (b.plan.sortMerge ? ' (SORT_MERGE)' : ''));
        residual.push(b.plan.residual.map(code).join(', ') || '—');
      } else {
        index.push(`**none**: ${b.problem}`);
        residual.push('—');
      }
    }
    for (const at of serving) uses.set(at, (uses.get(at) ?? 0) + 1);
    return [
      code(file.shape.collection),
      [...commands].sort().join(', '),
      verdict.branches.map((b) => code(describeConjunct(b.branch))).join('<br>'),
      file.shape.sort.length ? code(describeSort(file.shape.sort)) : '',
      index.join('<br>'),
      residual.join('<br>'),
      [...callSites].sort().map(code).join('<br>'),
    ];
  });
  const collections = [...new Set([...collectionNames(), ...rows.map((r) => r.file.shape.collection)])].sort();
  const indexRows = collections.flatMap((c) =>
    indexesOn(c, declared).map((i) => {
      const n = uses.get(`${c}.${i.name}`) ?? 0;
      return [
        code(c),
        code(i.name) + (i.unique ? ' (unique)' : ''),
        code(describeKey(i)),
        n === 0 ? 'no query shape seen' : `${n} shape${n === 1 ? '' : 's'}`,
      ];
    }),
  );
  return [table(INDEX_TABLE_HEADER, indexRows), '', table(SHAPE_TABLE_HEADER, shapeRows)].join('\n');
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function readRecordings(dir = OUTPUT_DIR): RecordingFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RecordingFile);
}

async function main(): Promise<void> {
  const files = readRecordings();
  const markdown = reportMarkdown(files, await declaredIndexes());
  process.stdout.write(`<!-- From ${files.length} test files' recordings: npx tsx test/support/indexAudit/report.ts -->\n${markdown}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
