// Reads MongoDB's explain output (verbosity queryPlanner) and names what makes a winning plan
// unindexed: a collection scan, a blocking in-memory sort, or an index scanned whole.
import type { Document } from 'mongodb';

export interface PlanStage {
  stage: string;
  indexName?: string;
  indexBounds?: Record<string, string[]>;
}

/**
 * The winning plans' stages, flattened: one plan for a replica set or standalone, one per shard
 * through mongos. Handles the classic format (`winningPlan` is the stage tree), the
 * slot-based engine's (`winningPlan.queryPlan`), aggregate explains (`stages[0].$cursor`) and
 * sharded ones (`winningPlan.shards[]`, or `shards.<name>` for aggregate).
 */
export function winningStages(explain: Document): PlanStage[] {
  const out: PlanStage[] = [];
  for (const plan of winningPlans(explain)) walk(plan, out);
  return out;
}

/** What is wrong with the plan, one line each; [] when every scan is a bounded index scan without a blocking sort. */
export function planProblems(explain: Document): string[] {
  const stages = winningStages(explain);
  if (stages.length === 0) return ['explain output has no winning plan'];
  const problems: string[] = [];
  for (const s of stages) {
    if (s.stage === 'COLLSCAN') problems.push('COLLSCAN: a collection scan');
    else if (s.stage === 'SORT') problems.push('SORT: an in-memory sort');
    else if (s.stage === 'EOF') problems.push('EOF: the plan reads nothing (no such collection?), so nothing was checked');
    else if (s.stage === 'IXSCAN' && wholeIndex(s.indexBounds)) problems.push(`IXSCAN over all of index ${s.indexName ?? '?'}: unbounded`);
  }
  return [...new Set(problems)];
}

function winningPlans(explain: Document): Document[] {
  const planner = asDocument(explain.queryPlanner) ?? asDocument(asDocument(asDocument(asArray(explain.stages)[0])?.$cursor)?.queryPlanner);
  if (planner) return plansOf(asDocument(planner.winningPlan));
  const shards = asDocument(explain.shards);
  if (shards) return Object.values(shards).flatMap((s) => winningPlans(asDocument(s) ?? {}));
  return [];
}

function plansOf(winning: Document | undefined): Document[] {
  if (!winning) return [];
  const shards = asArray(winning.shards);
  if (shards.length > 0) return shards.flatMap((s) => plansOf(asDocument(asDocument(s)?.winningPlan)));
  const sbe = asDocument(winning.queryPlan);
  return [sbe ?? winning];
}

function walk(node: Document, out: PlanStage[]): void {
  if (typeof node.stage === 'string') {
    out.push({
      stage: node.stage,
      indexName: typeof node.indexName === 'string' ? node.indexName : undefined,
      indexBounds: asDocument(node.indexBounds),
    });
  }
  for (const key of ['inputStage', 'outerStage', 'innerStage', 'thenStage', 'elseStage']) {
    const child = asDocument(node[key]);
    if (child) walk(child, out);
  }
  for (const child of asArray(node.inputStages)) {
    const c = asDocument(child);
    if (c) walk(c, out);
  }
}

// The first field's bounds decide whether the scan is bounded at all (later fields only narrow it).
function wholeIndex(bounds: Record<string, string[]> | undefined): boolean {
  if (!bounds) return false;
  const first = Object.values(bounds)[0];
  return Array.isArray(first) && first.length === 1 && (first[0] === '[MinKey, MaxKey]' || first[0] === '[MaxKey, MinKey]');
}

function asDocument(v: unknown): Document | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
