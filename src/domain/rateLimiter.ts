/**
 * Fixed-window per-key rate limiting, in memory. State is per instance: with N instances
 * behind a balancer a key may get up to N × limit per window (documented in docs/architecture.md).
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  take(keyId: string, limit: number, windowMs: number, now: number): RateDecision {
    let w = this.windows.get(keyId);
    if (!w || now - w.start >= windowMs) {
      w = { start: now, count: 0 };
      this.windows.set(keyId, w);
    }
    const allowed = w.count < limit;
    if (allowed) w.count++;
    return { allowed, limit, remaining: Math.max(0, limit - w.count), resetAt: w.start + windowMs };
  }

  /** Drops windows that ended; called from the usage flush so the map stays small. */
  prune(now: number, maxWindowMs: number): void {
    for (const [id, w] of this.windows) if (now - w.start >= maxWindowMs) this.windows.delete(id);
  }
}
