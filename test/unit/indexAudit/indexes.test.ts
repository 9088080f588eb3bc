// Which index serves a query shape, rule by rule (test/support/indexAudit/indexes.ts).
import {
  auditShape,
  declaredIndexes,
  MAX_SORT_MERGE_POINTS,
  planBranch,
  type BranchVerdict,
  type IndexSpec,
} from '../../support/indexAudit/indexes';
import { queriesOf, type Conjunct, type SortField } from '../../support/indexAudit/shapes';

const idx = (name: string, ...key: Array<[string, 1 | -1]>): IndexSpec => ({ collection: 'c', name, key, unique: false });
const conj = (c: Partial<Conjunct>): Conjunct => ({ eq: [], in: [], range: [], other: [], ...c });
const sort = (...fields: Array<[string, 1 | -1]>): SortField[] => fields.map(([field, dir]) => ({ field, dir }));

const servedBy = (v: BranchVerdict) => ('plan' in v ? v.plan.index : undefined);
const problemOf = (v: BranchVerdict) => ('problem' in v ? v.problem : undefined);

const orgCreated = idx('org_created', ['org_id', 1], ['created_at', -1], ['_id', -1]);

describe('equality prefix', () => {
  it('serves equality on the leading fields, in any order of the filter', () => {
    const ab = idx('ab', ['a', 1], ['b', 1]);
    expect(planBranch(conj({ eq: ['b', 'a'] }), [], [ab])).toEqual({
      branch: conj({ eq: ['b', 'a'] }),
      plan: { index: 'ab', bounded: ['a', 'b'], residual: [], sortMerge: false },
    });
  });

  it('serves a range on the leading field', () => {
    expect(servedBy(planBranch(conj({ range: ['at'] }), [], [idx('at', ['at', 1])]))).toBe('at');
  });

  it('is a collection scan when no index starts with a constrained field', () => {
    expect(problemOf(planBranch(conj({ eq: ['name'] }), [], [orgCreated]))).toBe('collection scan: no index starts with a field of name =');
  });

  it('does not count a predicate the index cannot bound (other) as a prefix', () => {
    expect(problemOf(planBranch(conj({ other: ['a'] }), [], [idx('a', ['a', 1])]))).toMatch(/^collection scan/);
  });

  it('is a collection scan for an empty filter, even with a sort an index has', () => {
    expect(problemOf(planBranch(conj({}), sort(['at', 1]), [idx('at', ['at', 1])]))).toMatch(/^collection scan/);
  });

  it('bounds through $in fields as it does through equality', () => {
    const plan = planBranch(conj({ eq: ['a'], in: ['b'], range: ['c'] }), [], [idx('abc', ['a', 1], ['b', 1], ['c', 1])]);
    expect('plan' in plan && plan.plan.bounded).toEqual(['a', 'b', 'c']);
  });

  it('ends the bounds at the first range field and lists the rest as residual', () => {
    const plan = planBranch(conj({ eq: ['a', 'c', 'x'], range: ['b'] }), [], [idx('abc', ['a', 1], ['b', 1], ['c', 1])]);
    expect('plan' in plan && plan.plan).toEqual({ index: 'abc', bounded: ['a', 'b'], residual: ['c', 'x'], sortMerge: false });
  });

  it('prefers the index with the tighter bounds', () => {
    const plan = planBranch(
      conj({ eq: ['org_id', 'key_id'] }),
      [],
      [idx('org', ['org_id', 1]), idx('org_key', ['org_id', 1], ['key_id', 1])],
    );
    expect(servedBy(plan)).toBe('org_key');
  });
});

describe('sort', () => {
  it('is given by the index fields after the equality prefix', () => {
    expect(servedBy(planBranch(conj({ eq: ['org_id'] }), sort(['created_at', -1], ['_id', -1]), [orgCreated]))).toBe('org_created');
  });

  it('is given exactly reversed', () => {
    expect(servedBy(planBranch(conj({ eq: ['org_id'] }), sort(['created_at', 1], ['_id', 1]), [orgCreated]))).toBe('org_created');
  });

  it('is not given against index order (one direction flipped)', () => {
    expect(problemOf(planBranch(conj({ eq: ['org_id'] }), sort(['created_at', 1], ['_id', -1]), [orgCreated]))).toBe(
      'in-memory sort: org_created bounds the query but its order {org_id: 1, created_at: -1, _id: -1} does not give {created_at: 1, _id: -1} (nor reversed)',
    );
  });

  it('is not given in another field order', () => {
    expect(problemOf(planBranch(conj({ eq: ['org_id'] }), sort(['_id', -1], ['created_at', -1]), [orgCreated]))).toMatch(/^in-memory sort/);
  });

  it('is not given when the sort field is not the next after the prefix', () => {
    const abc = idx('abc', ['a', 1], ['b', 1], ['c', 1]);
    expect(problemOf(planBranch(conj({ eq: ['a'] }), sort(['c', 1]), [abc]))).toMatch(/^in-memory sort/);
  });

  it('drops sort fields with an equality predicate, and skips equality fields inside the index', () => {
    const abcd = idx('abcd', ['a', 1], ['b', 1], ['c', 1], ['d', 1]);
    expect(servedBy(planBranch(conj({ eq: ['a', 'c'] }), sort(['b', 1], ['c', -1], ['d', 1]), [abcd]))).toBe('abcd');
    expect(
      servedBy(planBranch(conj({ eq: ['org_id', 'created_at'], range: ['_id'] }), sort(['created_at', -1], ['_id', -1]), [orgCreated])),
    ).toBe('org_created');
  });

  it('is given on the leading field when it carries the range', () => {
    expect(servedBy(planBranch(conj({ range: ['_id'] }), sort(['_id', 1]), [idx('_id_', ['_id', 1])]))).toBe('_id_');
  });

  it('is a merge of the points when a $in field precedes the sort fields', () => {
    const index = idx('org_status_created', ['org_id', 1], ['status', 1], ['created_at', -1]);
    const plan = planBranch(conj({ eq: ['org_id'], in: ['status'] }), sort(['created_at', -1]), [index], 3);
    expect('plan' in plan && plan.plan.sortMerge).toBe(true);
  });

  it(`is in memory when the merge would take more than ${MAX_SORT_MERGE_POINTS} points`, () => {
    const index = idx('org_status_created', ['org_id', 1], ['status', 1], ['created_at', -1]);
    expect(
      problemOf(planBranch(conj({ eq: ['org_id'], in: ['status'] }), sort(['created_at', -1]), [index], MAX_SORT_MERGE_POINTS + 1)),
    ).toMatch(/^in-memory sort: .* 201 \$in points/);
  });

  it('is given past a $in field between prefix and sort fields (a merge), not past a range field', () => {
    const index = idx('a_b_c', ['a', 1], ['b', 1], ['c', 1]);
    expect(problemOf(planBranch(conj({ eq: ['a'], in: ['b'] }), sort(['c', 1]), [index], 2))).toBeUndefined();
    expect(problemOf(planBranch(conj({ eq: ['a'], range: ['b'] }), sort(['c', 1]), [index]))).toMatch(/^in-memory sort/);
  });
});

describe('auditShape', () => {
  const declared = [orgCreated, idx('at', ['at', 1]), idx('day', ['day', 1])];
  const shapeOf = (filter: object, s?: object) => queriesOf('find', { find: 'c', filter, sort: s })[0];

  it('serves _id with the _id_ index every collection has', () => {
    const q = shapeOf({ _id: { $in: ['a', 'b'] }, at: { $lt: 1 } });
    expect(auditShape(q.shape, []).branches.map(servedBy)).toEqual(['_id_']);
  });

  it('needs every $or branch served: one unindexed branch leaves the query unserved', () => {
    const both = auditShape(shapeOf({ $or: [{ at: { $lt: 1 } }, { day: { $lt: 'x' } }] }).shape, declared);
    expect(both.served).toBe(true);
    expect(both.branches.map(servedBy)).toEqual(['at', 'day']);
    const one = auditShape(shapeOf({ $or: [{ at: { $lt: 1 } }, { name: 'n' }] }).shape, declared);
    expect(one.served).toBe(false);
    expect(one.branches.map(problemOf)).toEqual([undefined, 'collection scan: no index starts with a field of name =']);
  });

  it('serves a paginated listing: each branch of the page cursor, with the sort', () => {
    const q = shapeOf(
      { org_id: 'o', status: { $in: ['active', 'revoked'] }, $or: [{ created_at: { $lt: 5 } }, { created_at: 5, _id: { $lt: 'k' } }] },
      { created_at: -1, _id: -1 },
    );
    const verdict = auditShape(q.shape, declared, q.inPoints);
    expect(verdict.served).toBe(true);
    expect(verdict.branches.map((b) => 'plan' in b && b.plan)).toEqual([
      { index: 'org_created', bounded: ['org_id', 'created_at'], residual: ['status'], sortMerge: false },
      { index: 'org_created', bounded: ['org_id', 'created_at', '_id'], residual: ['status'], sortMerge: false },
    ]);
  });
});

describe('declaredIndexes', () => {
  it("reads ensureIndexes' createIndex calls, by collection name", async () => {
    const declared = await declaredIndexes();
    expect(declared).toContainEqual({ collection: 'api_keys', name: 'hash_unique', key: [['hash', 1]], unique: true });
    expect(declared).toContainEqual({
      collection: 'api_keys',
      name: 'org_status',
      key: [
        ['org_id', 1],
        ['status', 1],
        ['created_at', -1],
        ['_id', -1],
      ],
      unique: false,
    });
    expect(new Set(declared.map((i) => `${i.collection}.${i.name}`)).size).toBe(declared.length);
  });
});
