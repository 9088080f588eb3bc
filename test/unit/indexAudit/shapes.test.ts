// Query shapes from commands as the driver's commandStarted event shows them.
import { Long, ObjectId } from 'mongodb';
import { queriesOf, shapeKey, type Conjunct } from '../../support/indexAudit/shapes';

const conj = (c: Partial<Conjunct>): Conjunct => ({ eq: [], in: [], range: [], other: [], ...c });
const branchesOf = (filter: object) => queriesOf('find', { find: 'c', filter })[0].shape.branches;

describe('field classes', () => {
  it('takes literal values, $eq and a one-element $in as equality', () => {
    expect(
      branchesOf({ a: 'x', b: { $eq: 1 }, c: { $in: ['only'] }, d: new Date(0), e: new ObjectId(), f: Long.fromNumber(1), g: null }),
    ).toEqual([conj({ eq: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] })]);
  });

  it('takes an embedded document without operators as equality', () => {
    expect(branchesOf({ meta: { team: 'a' } })).toEqual([conj({ eq: ['meta'] })]);
  });

  it('takes a $in of several values as points that are not constant', () => {
    expect(branchesOf({ status: { $in: ['active', 'revoked'] } })).toEqual([conj({ in: ['status'] })]);
  });

  it('takes comparisons, $ne, $nin, $exists: false, regular expressions as ranges', () => {
    expect(
      branchesOf({
        a: { $gt: 1 },
        b: { $gte: 1, $lt: 9 },
        c: { $ne: null },
        d: { $nin: [1, 2] },
        e: { $exists: false },
        f: /^x/,
        g: { $in: [/^y/] },
      }),
    ).toEqual([conj({ range: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] })]);
  });

  it('takes what gives no index bounds as other: $exists: true, $size, $expr, $nor', () => {
    expect(branchesOf({ a: { $exists: true }, b: { $size: 2 }, $expr: { $gt: ['$x', '$y'] }, $nor: [{ c: 1 }] })).toEqual([
      conj({ other: ['$expr', 'a', 'b', 'c'] }),
    ]);
  });

  it('keeps the strongest class when a field has several predicates', () => {
    expect(branchesOf({ a: { $eq: 1, $lt: 5 }, b: { $in: [1, 2], $ne: 3 }, $and: [{ c: { $gt: 1 } }, { c: 2 }] })).toEqual([
      conj({ eq: ['a', 'c'], in: ['b'] }),
    ]);
  });

  it('ignores $comment', () => {
    expect(branchesOf({ a: 1, $comment: 'why' })).toEqual([conj({ eq: ['a'] })]);
  });

  it('reduces an empty filter to one branch without fields', () => {
    expect(branchesOf({})).toEqual([conj({})]);
  });
});

describe('$or', () => {
  it('gives one branch per alternative, each with the predicates beside the $or', () => {
    const filter = { org_id: 'o', status: { $in: ['a', 'b'] }, $or: [{ created_at: { $lt: 1 } }, { created_at: 1, _id: { $lt: 'k' } }] };
    expect(branchesOf(filter)).toEqual([
      conj({ eq: ['org_id'], in: ['status'], range: ['created_at'] }),
      conj({ eq: ['created_at', 'org_id'], in: ['status'], range: ['_id'] }),
    ]);
  });

  it('multiplies out two $or under $and', () => {
    expect(branchesOf({ $and: [{ $or: [{ a: 1 }, { b: 1 }] }, { $or: [{ c: 1 }, { d: 1 }] }] })).toEqual([
      conj({ eq: ['a', 'c'] }),
      conj({ eq: ['a', 'd'] }),
      conj({ eq: ['b', 'c'] }),
      conj({ eq: ['b', 'd'] }),
    ]);
  });

  it('flattens a nested $or', () => {
    expect(branchesOf({ $or: [{ a: 1 }, { $or: [{ b: 1 }, { c: { $gt: 1 } }] }] })).toEqual([
      conj({ eq: ['a'] }),
      conj({ eq: ['b'] }),
      conj({ range: ['c'] }),
    ]);
  });
});

describe('commands', () => {
  it('reads find filter and sort, the driver sending the sort as a Map', () => {
    const [q] = queriesOf('find', {
      find: 'api_keys',
      filter: { org_id: 'o' },
      sort: new Map([
        ['created_at', -1],
        ['_id', -1],
      ]),
      $db: 'd',
    });
    expect(q.shape).toEqual({
      collection: 'api_keys',
      branches: [conj({ eq: ['org_id'] })],
      sort: [
        { field: 'created_at', dir: -1 },
        { field: '_id', dir: -1 },
      ],
    });
    expect(q.command).toBe('find');
  });

  it('reads one query per update and delete statement', () => {
    expect(
      queriesOf('update', {
        update: 'c',
        updates: [
          { q: { _id: 'a' }, u: {} },
          { q: { day: { $lt: 'x' } }, u: {} },
        ],
      }).map((q) => q.shape.branches),
    ).toEqual([[conj({ eq: ['_id'] })], [conj({ range: ['day'] })]]);
    expect(queriesOf('delete', { delete: 'c', deletes: [{ q: { key_id: 'k' }, limit: 0 }] })[0].shape.branches).toEqual([
      conj({ eq: ['key_id'] }),
    ]);
  });

  it('reads count, distinct and findAndModify queries', () => {
    expect(queriesOf('count', { count: 'c', query: { a: 1 } })[0].shape.branches).toEqual([conj({ eq: ['a'] })]);
    expect(queriesOf('distinct', { distinct: 'c', key: 'x', query: { a: 1 } })[0].shape.branches).toEqual([conj({ eq: ['a'] })]);
    const [fam] = queriesOf('findAndModify', { findAndModify: 'c', query: { a: 1 }, sort: { b: 1 }, update: {} });
    expect(fam.shape.sort).toEqual([{ field: 'b', dir: 1 }]);
  });

  it("reads an aggregate's leading $match and the $sort right after it", () => {
    const [q] = queriesOf('aggregate', {
      aggregate: 'c',
      pipeline: [{ $match: { a: 1 } }, { $sort: { b: -1 } }, { $limit: 1 }],
      cursor: {},
    });
    expect(q.shape).toEqual({ collection: 'c', branches: [conj({ eq: ['a'] })], sort: [{ field: 'b', dir: -1 }] });
  });

  it('takes an aggregate that does not start with $match as unfiltered', () => {
    expect(queriesOf('aggregate', { aggregate: 'c', pipeline: [{ $group: { _id: '$a' } }], cursor: {} })[0].shape.branches).toEqual([
      conj({}),
    ]);
  });

  it('ignores commands without a filter', () => {
    expect(queriesOf('insert', { insert: 'c', documents: [{}] })).toEqual([]);
    expect(queriesOf('getMore', { getMore: Long.fromNumber(1), collection: 'c' })).toEqual([]);
    expect(queriesOf('hello', { hello: 1 })).toEqual([]);
  });

  it('counts the point intervals a branch $in fields multiply to', () => {
    expect(queriesOf('find', { find: 'c', filter: { a: { $in: [1, 2, 3] }, b: { $in: [1, 2] } } })[0].inPoints).toBe(6);
  });
});

describe('shapeKey', () => {
  it('is the same for the same shape whatever the values and the order of fields or branches', () => {
    const key = (filter: object) => shapeKey(queriesOf('find', { find: 'c', filter, sort: { t: -1 } })[0].shape);
    expect(key({ a: 1, b: { $lt: 2 }, $or: [{ x: 1 }, { y: 1 }] })).toBe(key({ $or: [{ y: 9 }, { x: 8 }], b: { $lt: 7 }, a: 6 }));
    expect(key({ a: 1 })).toBe('c a = sort {t: -1}');
    expect(key({ a: 1 })).not.toBe(key({ a: { $in: [1, 2] } }));
  });
});
