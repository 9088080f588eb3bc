import type { KeyCache } from './keyCache';
import type { KeyRepository } from '../storage/keyRepository';

/** Margin for clock skew between instances: changes are re-read this far back each poll. */
const SKEW_MARGIN_MS = 2_000;

/**
 * Evicts cache entries of keys changed by other instances: each poll reads keys whose
 * updated_at moved since the last poll (updated_at index). Evicting twice is harmless.
 */
export function invalidationTask(keys: KeyRepository, cache: KeyCache, now: () => Date): () => Promise<void> {
  let since = new Date(now().getTime() - SKEW_MARGIN_MS);
  return async () => {
    const started = now();
    // Each poll re-reads a margin, so most changes are seen more than once: evict only entries
    // older than the version read. Evicting an entry that is already current would make the key
    // depend on storage again for no reason (and fail if storage goes away at that moment).
    for (const changed of await keys.changedSince(since)) cache.evictUnlessCurrent(changed.hash, changed.etag);
    since = new Date(started.getTime() - SKEW_MARGIN_MS);
  };
}
