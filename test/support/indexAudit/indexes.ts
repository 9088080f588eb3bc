// Which declared index serves a query shape, by the rules MongoDB's planner follows for one
// index scan (a B-tree scan over the index's key order):
//   1. The scan is bounded only if the index's first field has a predicate (eq, in or range);
//      an index whose first field the query does not constrain could at best be scanned whole,
//      which costs what a collection scan costs, so it does not count.
//   2. The bounds go on through the longest prefix of point fields (eq or in, in any order among
//      themselves), and then one more field if it has a range predicate.
//   3. A sort comes from the index when, after some prefix of point fields, the index's next
//      fields (skipping eq fields, which are constant) are the sort's fields in its order, with
//      every direction equal or every direction reversed. Sort fields with eq predicates are
//      constant and drop out of the sort. An in field in that prefix means a merge of its points
//      (SORT_MERGE), which MongoDB does for at most 200 of them; past that it sorts in memory.
//   4. Predicates on other fields are filtered after the fetch: the index still serves the shape,
//      the table in docs/indexes.md lists them.
// Every branch of a shape's filter must be served (a branch without an index makes the whole
// query a collection scan), each with the shape's sort. `_id` is served by the `_id_` index
// every collection has.
import type { Db } from 'mongodb';
import { allCollections, collectionsOf, ensureIndexes, type Collections } from '../../../src/storage/mongo';
import { describeConjunct, describeSort, type Conjunct, type Direction, type QueryShape, type SortField } from './shapes';

export interface IndexSpec {
  collection: string;
  name: string;
  key: Array<[string, Direction]>;
  unique: boolean;
}

export interface BranchPlan {
  index: string;
  /** Fields the scan's bounds use, in index order. */
  bounded: string[];
  /** Predicates checked after the fetch. */
  residual: string[];
  /** The sort is a merge of the in fields' points. */
  sortMerge: boolean;
}

export type BranchVerdict = { branch: Conjunct; plan: BranchPlan } | { branch: Conjunct; problem: string };

export interface ShapeVerdict {
  served: boolean;
  branches: BranchVerdict[];
}

/** MongoDB merges at most this many point scans to give a sort (internalQueryMaxScansToExplode). */
export const MAX_SORT_MERGE_POINTS = 200;

/**
 * The indexes src/storage/mongo.ts declares, read by running its ensureIndexes against a stub
 * database that records each createIndex (one source of truth: the code that creates them).
 */
export async function declaredIndexes(): Promise<IndexSpec[]> {
  const specs: IndexSpec[] = [];
  await ensureIndexes(
    stubCollections((name, key, options) => {
      const fields = Object.entries(key).map(([f, d]): [string, Direction] => {
        if (d !== 1 && d !== -1)
          throw new Error(`index audit: ${name} declares a ${String(d)} index on ${f}; teach test/support/indexAudit/indexes.ts its rules`);
        return [f, d];
      });
      specs.push({
        collection: name,
        name: options.name ?? fields.map(([f, d]) => `${f}_${d}`).join('_'),
        key: fields,
        unique: options.unique === true,
      });
    }),
  );
  return specs;
}

/** Every collection the service uses, by its name in MongoDB. */
export function collectionNames(): string[] {
  return allCollections(stubCollections(() => {})).map((c) => c.collectionName);
}

type CreateIndex = (collection: string, key: Record<string, unknown>, options: { name?: string; unique?: boolean }) => void;

function stubCollections(createIndex: CreateIndex): Collections {
  const collection = (name: string) => ({
    collectionName: name,
    createIndex(key: Record<string, unknown>, options: { name?: string; unique?: boolean } = {}) {
      createIndex(name, key, options);
      return Promise.resolve(name);
    },
  });
  return collectionsOf({ collection } as unknown as Db);
}

/** `{org_id: 1, created_at: -1}` */
export function describeKey(index: IndexSpec): string {
  return describeSort(index.key.map(([field, dir]) => ({ field, dir })));
}

/** The indexes a query on `collection` may use: the declared ones and `_id_`. */
export function indexesOn(collection: string, declared: IndexSpec[]): IndexSpec[] {
  return [{ collection, name: '_id_', key: [['_id', 1]], unique: true }, ...declared.filter((i) => i.collection === collection)];
}

export function auditShape(shape: QueryShape, declared: IndexSpec[], inPoints = 1): ShapeVerdict {
  const indexes = indexesOn(shape.collection, declared);
  const branches = shape.branches.map((branch) => planBranch(branch, shape.sort, indexes, inPoints));
  return { served: branches.every((b) => 'plan' in b), branches };
}

export function planBranch(branch: Conjunct, sort: SortField[], indexes: IndexSpec[], inPoints = 1): BranchVerdict {
  const plans = indexes.map((index) => planWith(index, branch, sort, inPoints));
  const served = plans.filter((p): p is BranchPlan => typeof p !== 'string');
  if (served.length > 0) {
    // The tightest bounds win; then the fewest predicates left for after the fetch.
    served.sort((a, b) => b.bounded.length - a.bounded.length || a.residual.length - b.residual.length);
    return { branch, plan: served[0] };
  }
  const bounding = plans.filter((p): p is string => typeof p === 'string' && !p.startsWith('collection scan'));
  return {
    branch,
    problem: bounding.length > 0 ? bounding.join('; ') : `collection scan: no index starts with a field of ${describeConjunct(branch)}`,
  };
}

/** The plan `index` gives, or why it gives none. */
function planWith(index: IndexSpec, branch: Conjunct, sort: SortField[], inPoints: number): BranchPlan | string {
  const fields = index.key.map(([f]) => f);
  const constant = new Set(branch.eq);
  const points = new Set([...branch.eq, ...branch.in]);
  const ranges = new Set(branch.range);
  if (!points.has(fields[0]) && !ranges.has(fields[0])) return `collection scan: ${index.name} starts with ${fields[0]}`;

  let prefix = 0;
  while (prefix < fields.length && points.has(fields[prefix])) prefix++;
  const bounded = fields.slice(0, prefix < fields.length && ranges.has(fields[prefix]) ? prefix + 1 : prefix);
  const all = [...branch.eq, ...branch.in, ...branch.range, ...branch.other];
  const residual = all.filter((f) => !bounded.includes(f));

  const wanted = sort.filter((s) => !constant.has(s.field));
  if (wanted.length === 0) return { index: index.name, bounded, residual, sortMerge: false };
  for (let k = 0; k <= prefix; k++) {
    if (!sortFollows(index.key, k, wanted, constant)) continue;
    const sortMerge = fields.slice(0, k).some((f) => !constant.has(f));
    if (sortMerge && inPoints > MAX_SORT_MERGE_POINTS) {
      return `in-memory sort: ${index.name} gives ${describeSort(sort)} only as a merge of ${inPoints} $in points (MongoDB merges at most ${MAX_SORT_MERGE_POINTS})`;
    }
    return { index: index.name, bounded, residual, sortMerge };
  }
  return `in-memory sort: ${index.name} bounds the query but its order ${describeKey(index)} does not give ${describeSort(sort)} (nor reversed)`;
}

/** Whether the index fields from `start` on, skipping constant ones, begin with `wanted`, all in order or all reversed. */
function sortFollows(key: Array<[string, Direction]>, start: number, wanted: SortField[], constant: Set<string>): boolean {
  let sign: number | undefined;
  let j = 0;
  for (let i = start; i < key.length && j < wanted.length; i++) {
    const [field, dir] = key[i];
    if (constant.has(field)) continue;
    if (field !== wanted[j].field) return false;
    const s = dir * wanted[j].dir;
    if (sign !== undefined && s !== sign) return false;
    sign = s;
    j++;
  }
  return j === wanted.length;
}
