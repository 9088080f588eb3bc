// Records the query shapes a test file's service instances send to MongoDB, with the line in
// src/ that sent each, and checks them against the declared indexes when the file has run
// (test/support/indexAudit/environment.ts calls finish()).
//
// The call site: the driver emits commandStarted after awaits (server selection, a pooled
// connection), so the listener's own stack holds only the `async` frames, and a repository
// method that returns the driver's promise without awaiting it is missing. So the app's
// Collection objects are wrapped: a call captures its stack synchronously and runs in an
// AsyncLocalStorage context that the driver's async chain carries to the listener.
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { CommandStartedEvent, Document, MongoClient } from 'mongodb';
import { allCollections, collectionsOf, ensureIndexes, type Collections } from '../../../src/storage/mongo';
import { testDb } from '../database';
import { planProblems } from './explain';
import { auditShape, declaredIndexes, describeKey, indexesOn, type IndexSpec, type ShapeVerdict } from './indexes';
import { describeConjunct, queriesOf, shapeKey, type QueryShape, type SortField } from './shapes';

export const ROOT = join(__dirname, '..', '..', '..');
export const OUTPUT_DIR = join(ROOT, '.tmp-index-audit');

/** What environment.ts finds on the test file's global. */
export interface IndexAuditFinisher {
  /** Violation messages ([] when every shape is served); writes the shapes to OUTPUT_DIR. */
  finish(testPath: string): Promise<string[]>;
}
export const FINISHER = Symbol.for('apikeys.indexAudit');

/** One shape as written to OUTPUT_DIR (report.ts reads these). */
export interface RecordedShape {
  key: string;
  shape: QueryShape;
  commands: string[];
  /** `Class.method (src/storage/file.ts:line)`. */
  callSites: string[];
  count: number;
  inPoints: number;
}

export interface RecordingFile {
  testFile: string;
  shapes: RecordedShape[];
}

interface Entry extends Omit<RecordedShape, 'commands' | 'callSites'> {
  commands: Set<string>;
  callSites: Set<string>;
  /** The first command's filter and sort, to explain on a real MongoDB (values stay in memory). */
  sample: { filter: Document; sort: SortField[] };
}

const COLLECTION_METHODS = [
  'find',
  'findOne',
  'aggregate',
  'countDocuments',
  'distinct',
  'insertOne',
  'insertMany',
  'bulkWrite',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndUpdate',
  'findOneAndDelete',
  'findOneAndReplace',
];
const CURSOR_METHODS = ['toArray', 'next', 'tryNext', 'hasNext', 'forEach'];
const RETURNS_CURSOR = new Set(['find', 'aggregate']);

const callSite = new AsyncLocalStorage<string>();

class Recorder implements IndexAuditFinisher {
  private readonly entries = new Map<string, Entry>();

  watch(client: MongoClient, collections: Collections): void {
    for (const collection of allCollections(collections)) wrapCallSites(collection, COLLECTION_METHODS);
    client.on('commandStarted', (e) => this.record(e));
  }

  private record(e: CommandStartedEvent): void {
    const queries = queriesOf(e.commandName, e.command);
    if (queries.length === 0) return;
    const site = callSite.getStore() ?? siteHere() ?? '(call site unknown)';
    // A test reading the service's collections directly (fault.test.ts counts what was stored).
    if (site === TEST_CODE) return;
    for (const q of queries) {
      const key = shapeKey(q.shape);
      let entry = this.entries.get(key);
      if (!entry) {
        entry = {
          key,
          shape: q.shape,
          commands: new Set(),
          callSites: new Set(),
          count: 0,
          inPoints: 1,
          sample: { filter: q.filter, sort: q.sort },
        };
        this.entries.set(key, entry);
      }
      entry.commands.add(q.command);
      entry.callSites.add(site);
      entry.count++;
      entry.inPoints = Math.max(entry.inPoints, q.inPoints);
    }
  }

  async finish(testPath: string): Promise<string[]> {
    if (this.entries.size === 0) return [];
    const entries = [...this.entries.values()];
    writeRecording(testPath, entries);
    const declared = await declaredIndexes();
    const violations = entries.flatMap((e) => {
      const verdict = auditShape(e.shape, declared, e.inPoints);
      return verdict.served ? [] : [unservedMessage(e, verdict, declared)];
    });
    if (process.env.TEST_INDEX_AUDIT_EXPLAIN === '1') violations.push(...(await explainAll(entries)));
    return violations;
  }
}

/** Starts recording what `storage`'s client sends (test/support/server.ts calls it for every app it starts). */
export function watchStorage(storage: { client: MongoClient; collections: Collections }): void {
  const g = globalThis as Record<symbol, unknown>;
  const existing = g[FINISHER];
  const recorder = existing instanceof Recorder ? existing : new Recorder();
  g[FINISHER] = recorder;
  recorder.watch(storage.client, storage.collections);
}

/** Replaces `names` on this one object (not the driver's prototypes) with versions that carry their caller's site. */
function wrapCallSites(target: object, names: string[], site?: string): void {
  const methods = target as Record<string, unknown>;
  for (const name of names) {
    const original = methods[name];
    if (typeof original !== 'function') continue;
    methods[name] = function (this: unknown, ...args: unknown[]): unknown {
      if (callSite.getStore() !== undefined) return Reflect.apply(original, this, args) as unknown;
      const here = site ?? siteHere() ?? '(call site unknown)';
      return callSite.run(here, () => {
        const result: unknown = Reflect.apply(original, this, args);
        // A cursor sends its command later, from toArray() or next(): it keeps where it was made.
        if (RETURNS_CURSOR.has(name) && typeof result === 'object' && result !== null) wrapCallSites(result, CURSOR_METHODS, here);
        return result;
      });
    };
  }
}

export interface Frame {
  /** `Class.method` or the function's name. */
  fn: string;
  file: string;
  line: number;
}

/**
 * The current stack, deep enough to reach from a driver call back to the repository method.
 * Names come from V8's call sites (jest's source-mapped text names a frame after the identifier
 * at its position — `find` for a line calling `this.keys.find` — not after its function). With
 * `mapLines`, lines come from that text, which maps them back to the TypeScript source: a second
 * capture at the same depth, formatted by whatever jest installed.
 */
function framesHere(mapLines: boolean): Frame[] {
  const stackTraceLimit = Error.stackTraceLimit;
  // Read as a value, to be put back as it was: V8 calls it with Error as the receiver anyway.
  const prepareStackTrace = Error.prepareStackTrace; // eslint-disable-line @typescript-eslint/unbound-method
  Error.stackTraceLimit = 30;
  const text = mapLines ? (new Error().stack ?? '') : '';
  let sites: NodeJS.CallSite[] = [];
  Error.prepareStackTrace = (_err, callSites) => {
    sites = callSites;
    return '';
  };
  String(new Error().stack); // reading .stack is what makes V8 call prepareStackTrace
  Error.stackTraceLimit = stackTraceLimit;
  Error.prepareStackTrace = prepareStackTrace;
  const mappedLines = text.split('\n').filter((l) => /^\s+at /.test(l));
  return sites.map((site, i) => {
    const type = site.getTypeName();
    const name = site.getFunctionName() ?? site.getMethodName() ?? '<anonymous>';
    const mapped = /:(\d+):\d+\)?$/.exec(mappedLines[i] ?? '');
    return {
      fn: type && type !== 'Object' && type !== 'global' ? `${type}.${name}` : name,
      file: site.getFileName() ?? '',
      line: mapped ? Number(mapped[1]) : (site.getLineNumber() ?? 0),
    };
  });
}

// Source-mapping a whole stack costs far more than the query it describes; a call site maps to
// the same source line every time, so each is mapped once.
const mappedSites = new Map<string, string | undefined>();

/** siteIn of the current stack, with the source line. */
function siteHere(): string | undefined {
  const raw = siteIn(framesHere(false));
  if (raw === undefined || raw === TEST_CODE) return raw;
  if (!mappedSites.has(raw)) mappedSites.set(raw, siteIn(framesHere(true)));
  return mappedSites.get(raw);
}

/** siteIn's answer for a command that test code sent through a service's client: not the service's query. */
export const TEST_CODE = 'test code';

/**
 * Where a command was sent from: the first frame in src/storage/ (else in src/), as
 * `Class.method (src/…/file.ts:line)`; TEST_CODE when no frame is in src/ but one is in a test;
 * undefined when neither shows.
 */
export function siteIn(frames: Frame[]): string | undefined {
  // Relative to the repository: a checkout under some other src/ directory must not match.
  const inRepo = frames.map((f) => ({ ...f, file: relative(ROOT, f.file) }));
  const pick = inRepo.find((f) => f.file.startsWith('src/storage/')) ?? inRepo.find((f) => f.file.startsWith('src/'));
  if (pick) return `${pick.fn} (${pick.file}:${pick.line})`;
  return inRepo.some((f) => f.file.startsWith('test/') && !f.file.startsWith('test/support/indexAudit/')) ? TEST_CODE : undefined;
}

function writeRecording(testPath: string, entries: Entry[]): void {
  const testFile = relative(ROOT, testPath);
  const file: RecordingFile = {
    testFile,
    shapes: entries.map(({ sample: _values, commands, callSites, ...rest }) => ({
      ...rest,
      commands: [...commands].sort(),
      callSites: [...callSites].sort(),
    })),
  };
  mkdirSync(OUTPUT_DIR, { recursive: true });
  writeFileSync(join(OUTPUT_DIR, `${testFile.replace(/[^A-Za-z0-9]+/g, '_')}.json`), `${JSON.stringify(file, null, 2)}\n`);
}

function unservedMessage(e: Entry, verdict: ShapeVerdict, declared: IndexSpec[]): string {
  const branches = verdict.branches.map(
    (b) => `  ${describeConjunct(b.branch)}: ${'problem' in b ? b.problem : `served by ${b.plan.index}`}`,
  );
  const indexes = indexesOn(e.shape.collection, declared).map((i) => `${i.name} ${describeKey(i)}`);
  return [
    `index audit: ${e.key} (${[...e.commands].join(', ')}) has no serving index`,
    ...branches,
    `  sent from ${[...e.callSites].join(', ')}`,
    `  indexes on ${e.shape.collection}: ${indexes.join(', ')}`,
  ].join('\n');
}

/**
 * On a real MongoDB: each shape's first command, as a find with its filter and sort, explained
 * on a scratch database holding every collection with the declared indexes. Empty collections
 * do not hide a collection scan: MongoDB plans one only when no index applies.
 */
async function explainAll(entries: Entry[]): Promise<string[]> {
  const scratch = await testDb('index_audit');
  try {
    const collections = collectionsOf(scratch.db);
    for (const c of allCollections(collections)) await scratch.db.createCollection(c.collectionName);
    await ensureIndexes(collections);
    const problems: string[] = [];
    for (const e of entries) {
      const sort = Object.fromEntries(e.sample.sort.map((s) => [s.field, s.dir]));
      const explained = await scratch.db.command({
        explain: { find: e.shape.collection, filter: e.sample.filter, ...(e.sample.sort.length ? { sort } : {}) },
        verbosity: 'queryPlanner',
      });
      const found = planProblems(explained);
      if (found.length) problems.push(`index audit (explain): ${e.key}: ${found.join('; ')}\n  sent from ${[...e.callSites].join(', ')}`);
    }
    return problems;
  } finally {
    await scratch.drop();
    await scratch.close();
  }
}
