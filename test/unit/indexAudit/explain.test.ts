// The explain-plan reader, on explain outputs written after MongoDB's documented format
// (queryPlanner.winningPlan; classic and slot-based engine, mongos, aggregate).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Document } from 'mongodb';
import { planProblems, winningStages } from '../../support/indexAudit/explain';

const fixture = (name: string): Document => JSON.parse(readFileSync(join(__dirname, 'explain', `${name}.json`), 'utf8')) as Document;

describe('winningStages', () => {
  it('walks the classic stage tree', () => {
    expect(winningStages(fixture('ixscan-fetch')).map((s) => s.stage)).toEqual(['PROJECTION_SIMPLE', 'FETCH', 'IXSCAN']);
    expect(winningStages(fixture('ixscan-fetch'))[2].indexName).toBe('hash_unique');
  });

  it("reads the slot-based engine's queryPlan, not its slotBasedPlan", () => {
    expect(winningStages(fixture('sbe-ixscan')).map((s) => s.stage)).toEqual(['PROJECTION_SIMPLE', 'FETCH', 'IXSCAN']);
  });

  it('follows every input of a SORT_MERGE', () => {
    expect(winningStages(fixture('or-sort-merge')).map((s) => s.stage)).toEqual(['LIMIT', 'FETCH', 'SORT_MERGE', 'IXSCAN', 'IXSCAN']);
  });

  it("reads every shard's plan through mongos", () => {
    expect(winningStages(fixture('sharded')).map((s) => s.stage)).toEqual([
      'FETCH',
      'SHARDING_FILTER',
      'IXSCAN',
      'SHARDING_FILTER',
      'COLLSCAN',
    ]);
  });

  it("reads an aggregate's $cursor stage", () => {
    expect(winningStages(fixture('aggregate-cursor')).map((s) => s.stage)).toEqual(['COLLSCAN']);
  });
});

describe('planProblems', () => {
  it.each(['ixscan-fetch', 'sbe-ixscan', 'or-sort-merge', 'express-ixscan', 'delete-ixscan'])('finds none in %s', (name) => {
    expect(planProblems(fixture(name))).toEqual([]);
  });

  it.each([
    ['a collection scan', 'collscan', 'COLLSCAN: a collection scan'],
    ['a blocking sort, even over an index scan', 'blocking-sort', 'SORT: an in-memory sort'],
    ['an index scanned from end to end', 'whole-index', 'IXSCAN over all of index at: unbounded'],
    ['a collection scan on one shard of several', 'sharded', 'COLLSCAN: a collection scan'],
    ['a collection scan under an aggregate', 'aggregate-cursor', 'COLLSCAN: a collection scan'],
    [
      'a plan that checked nothing (EOF: no such collection)',
      'eof',
      'EOF: the plan reads nothing (no such collection?), so nothing was checked',
    ],
  ])('names %s', (_what, name, problem) => {
    expect(planProblems(fixture(name))).toEqual([problem]);
  });

  it('does not pass an output without a winning plan (FerretDB answers explain so)', () => {
    expect(planProblems({ queryPlanner: {}, explainVersion: '1', ok: 1 })).toEqual(['explain output has no winning plan']);
  });
});
