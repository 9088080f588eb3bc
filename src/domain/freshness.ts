import type { ChangeFeed } from './changeFeed';
import type { LoggedChange } from './model';
import type { ChangeLog, Clock } from './ports';
import type { Verifier } from './verification';
import type { Logger } from '../logging/logger';

/** Margin for clock skew between instances: changes are re-read this far back each poll. */
export const SKEW_MARGIN_MS = 2_000;

export interface InvalidationDeps {
  changeLog: Pick<ChangeLog, 'since'>;
  verifier: Pick<Verifier, 'invalidate' | 'synced' | 'lagMs'>;
  now: Clock;
  /** VERIFY_REVOCATION_BOUND_MS: past it, operators are told that cached keys are being re-read. */
  revocationBoundMs: number;
  logger: Logger;
  /** WatchKeyChanges subscribers hear of each successful poll: the entries it read, and that it succeeded. */
  feed?: Pick<ChangeFeed, 'polled'>;
}

/**
 * Applies the key change log to this instance's Verify cache: each poll reads the entries logged
 * since the last successful one (index `at`), so its cost follows how much changed, not how many
 * keys exist. A successful poll also tells the Verifier that its cache is current as of the
 * poll's start; while polls fail, that confirmation ages and Verify stops trusting the cache.
 */
export function invalidationTask(d: InvalidationDeps): () => Promise<void> {
  let since = new Date(d.now().getTime() - SKEW_MARGIN_MS);
  let behind = false;
  return async () => {
    const started = d.now();
    if (!behind && d.verifier.lagMs() > d.revocationBoundMs) {
      behind = true;
      d.logger.warn(
        { lagMs: d.verifier.lagMs(), boundMs: d.revocationBoundMs },
        'key change log not read within the revocation bound: cached keys are re-read from storage, and fail closed while it is down',
      );
    }
    // Each poll re-reads a margin, so most entries are seen more than once: invalidate() keeps
    // cache entries that already are the version logged.
    const changes = await d.changeLog.since(since);
    for (const change of latestPerKey(changes)) d.verifier.invalidate(change.hash, change.etag);
    d.verifier.synced(started.getTime());
    since = new Date(started.getTime() - SKEW_MARGIN_MS);
    // After this instance's own cache: a subscriber that asks again on hearing of a change gets the new version.
    d.feed?.polled(changes, since, started);
    if (behind) {
      behind = false;
      d.logger.info('key change log read again: cached keys are trusted again');
    }
  };
}

/** Only a key's latest logged version matters: applying an older one would evict the current entry. */
export function latestPerKey(changes: LoggedChange[]): LoggedChange[] {
  const latest = new Map<string, LoggedChange>();
  for (const c of changes) {
    const seen = latest.get(c.hash);
    if (!seen || c.at.getTime() >= seen.at.getTime()) latest.set(c.hash, c);
  }
  return [...latest.values()];
}
