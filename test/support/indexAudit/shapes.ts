// Query shapes: what an index needs to know about a command's filter and sort, without its values.
//
// A filter is reduced to disjunctive normal form: a list of branches, each a conjunction of
// per-field predicates, because MongoDB plans each `$or` branch with its own index scan (an
// `$or` beside other predicates is planned as the other predicates ANDed into each branch).
// Each field of a branch falls in the strongest of four classes, in the way MongoDB's planner
// builds index bounds from it:
//   eq     one point interval: `{f: v}`, `{f: {$eq: v}}`, `{f: {$in: [v]}}` (MongoDB rewrites a
//          one-element $in to $eq); the field is constant, so it also drops out of the sort.
//   in     several point intervals: `{f: {$in: [v1, v2, …]}}`. Like eq it extends an index prefix
//          (the bounds stay points, so the next index field is bounded too), but it is not
//          constant: a sort on the fields after it needs a merge of the points (SORT_MERGE).
//   range  one or more intervals that are not points: $gt $gte $lt $lte $ne $nin $not $regex
//          $type $all $elemMatch `$exists: false`; it bounds its index field, and ends the prefix.
//   other  no index bounds at all: `$exists: true` (a non-sparse index holds missing fields as
//          null, so the bounds are [MinKey, MaxKey]), $size $mod $expr $where $text, anything
//          under $nor, operators not listed here. It is only ever filtered after the fetch.
import type { Document } from 'mongodb';

export type Direction = 1 | -1;

export interface SortField {
  field: string;
  dir: Direction;
}

/** One branch of a filter: field names by class, each sorted, each field in one class only. */
export interface Conjunct {
  eq: string[];
  in: string[];
  range: string[];
  other: string[];
}

export interface QueryShape {
  collection: string;
  /** The filter in disjunctive normal form; a document matches when any branch does. */
  branches: Conjunct[];
  sort: SortField[];
}

/** One query a command runs: update and delete commands run one per statement. */
export interface CommandQuery {
  command: string;
  shape: QueryShape;
  filter: Document;
  sort: SortField[];
  /** Most point intervals any branch's $in fields multiply to (MongoDB merges at most 200 for a sort). */
  inPoints: number;
}

type Class = keyof Conjunct;
const STRENGTH: Record<Class, number> = { eq: 3, in: 2, range: 1, other: 0 };

const RANGE_OPERATORS = new Set(['$gt', '$gte', '$lt', '$lte', '$ne', '$nin', '$not', '$regex', '$options', '$type', '$all', '$elemMatch']);

interface Branch {
  fields: Map<string, Class>;
  inPoints: number;
}

/** The queries of one command as the driver's commandStarted event shows it; [] for commands without a filter. */
export function queriesOf(commandName: string, command: Document): CommandQuery[] {
  const collection = command[commandName];
  if (typeof collection !== 'string') return [];
  const one = (filter: unknown, sort?: unknown): CommandQuery => {
    const f = isDocument(filter) ? filter : {};
    const s = sortOf(sort);
    const branches = dnf(f);
    return {
      command: commandName,
      shape: { collection, branches: branches.map(toConjunct), sort: s },
      filter: f,
      sort: s,
      inPoints: Math.max(1, ...branches.map((b) => b.inPoints)),
    };
  };
  switch (commandName) {
    case 'find':
      return [one(command.filter, command.sort)];
    case 'count':
    case 'distinct':
      return [one(command.query)];
    case 'findAndModify':
      return [one(command.query, command.sort)];
    case 'delete':
      return asArray(command.deletes).map((d) => one(isDocument(d) ? d.q : undefined));
    case 'update':
      return asArray(command.updates).map((u) => one(isDocument(u) ? u.q : undefined));
    case 'aggregate': {
      // The planner uses indexes only for a leading $match and a $sort right after it (or leading).
      const [first, second] = asArray(command.pipeline).filter(isDocument);
      if (first && '$match' in first) return [one(first.$match, second && '$sort' in second ? second.$sort : undefined)];
      if (first && '$sort' in first) return [one({}, first.$sort)];
      return [one({})];
    }
    default:
      return [];
  }
}

/** A stable text for a shape: equal shapes, equal keys. */
export function shapeKey(shape: QueryShape): string {
  const branches = shape.branches.map(describeConjunct).sort().join(' | ');
  return `${shape.collection} ${branches || '{}'}${shape.sort.length ? ` sort ${describeSort(shape.sort)}` : ''}`;
}

/** `org_id =, status ∈, created_at <>, note ?`: = eq, ∈ in, <> range, ? other. */
export function describeConjunct(c: Conjunct): string {
  const parts = [
    ...c.eq.map((f) => `${f} =`),
    ...c.in.map((f) => `${f} ∈`),
    ...c.range.map((f) => `${f} <>`),
    ...c.other.map((f) => `${f} ?`),
  ];
  return parts.length ? parts.join(', ') : '(no filter)';
}

export function describeSort(sort: SortField[]): string {
  return `{${sort.map((s) => `${s.field}: ${s.dir}`).join(', ')}}`;
}

function dnf(filter: Document): Branch[] {
  let branches: Branch[] = [{ fields: new Map(), inPoints: 1 }];
  const and = (right: Branch[]) => {
    branches = branches.flatMap((l) => right.map((r) => merge(l, r)));
  };
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and') for (const sub of asArray(value).filter(isDocument)) and(dnf(sub));
    else if (key === '$or') and(asArray(value).filter(isDocument).flatMap(dnf));
    else if (key === '$nor')
      and([
        single(
          asArray(value)
            .filter(isDocument)
            .flatMap((d) => Object.keys(d)),
          'other',
        ),
      ]);
    else if (key === '$comment') continue;
    else if (key.startsWith('$')) and([single([key], 'other')]);
    else and([single([key], classify(value), inCount(value))]);
  }
  return branches;
}

function single(fields: string[], cls: Class, inPoints = 1): Branch {
  return { fields: new Map(fields.map((f) => [f, cls])), inPoints };
}

function merge(a: Branch, b: Branch): Branch {
  const fields = new Map(a.fields);
  for (const [f, cls] of b.fields) {
    const had = fields.get(f);
    if (had === undefined || STRENGTH[cls] > STRENGTH[had]) fields.set(f, cls);
  }
  // Upper bound: a field constrained by both sides counts twice.
  return { fields, inPoints: a.inPoints * b.inPoints };
}

function classify(value: unknown): Class {
  if (isRegExp(value)) return 'range';
  if (!isOperatorDocument(value)) return 'eq';
  let best: Class = 'other';
  const stronger = (c: Class) => {
    if (STRENGTH[c] > STRENGTH[best]) best = c;
  };
  for (const [op, arg] of Object.entries(value)) {
    if (op === '$eq') stronger('eq');
    else if (op === '$in') {
      const values = asArray(arg);
      if (values.some(isRegExp)) stronger('range');
      else stronger(values.length === 1 ? 'eq' : 'in');
    } else if (op === '$exists') stronger(arg ? 'other' : 'range');
    else if (RANGE_OPERATORS.has(op)) stronger('range');
  }
  return best;
}

function inCount(value: unknown): number {
  if (!isOperatorDocument(value) || !('$in' in value)) return 1;
  return Math.max(1, asArray(value.$in).length);
}

function sortOf(sort: unknown): SortField[] {
  const entries = sort instanceof Map ? [...(sort as Map<string, unknown>).entries()] : isDocument(sort) ? Object.entries(sort) : [];
  // The driver sends 1 or -1 whatever it was given ('desc' too). The service sorts by no
  // `{$meta: …}` (text score), which no B-tree index could give.
  return entries.map(([field, d]) => ({ field, dir: d === -1 ? -1 : 1 }));
}

function toConjunct(b: Branch): Conjunct {
  const c: Conjunct = { eq: [], in: [], range: [], other: [] };
  for (const [f, cls] of b.fields) c[cls].push(f);
  for (const k of Object.keys(c) as Class[]) c[k].sort();
  return c;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

// Plain objects only: Dates, ObjectIds and other BSON values are values, not documents.
// Tag checks rather than instanceof: under jest, values may come from another realm.
function isDocument(v: unknown): v is Document {
  return typeof v === 'object' && v !== null && Object.prototype.toString.call(v) === '[object Object]' && !('_bsontype' in v);
}

function isOperatorDocument(v: unknown): v is Document {
  return isDocument(v) && Object.keys(v).some((k) => k.startsWith('$'));
}

function isRegExp(v: unknown): boolean {
  return (
    Object.prototype.toString.call(v) === '[object RegExp]' ||
    (typeof v === 'object' && v !== null && (v as { _bsontype?: unknown })._bsontype === 'BSONRegExp')
  );
}
