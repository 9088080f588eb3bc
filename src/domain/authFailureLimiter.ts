export interface AuthFailureLimiterSettings {
  /** Failures a peer may have in one window; at this many, its API-key authentications are refused. */
  limit: number;
  windowMs: number;
  now: () => number;
  /** Peers remembered at once; past it the one whose window started first is forgotten. */
  maxPeers?: number;
}

const DEFAULT_MAX_PEERS = 10_000;

/**
 * Slows down guessing of API keys: failed API-key authentications are counted per peer in fixed
 * windows that start at the peer's first failure. Memory is bounded by maxPeers.
 */
export class AuthFailureLimiter {
  /** peer → its current window; insertion order is window start order. */
  private readonly peers = new Map<string, { start: number; failures: number }>();
  private readonly maxPeers: number;

  constructor(private readonly s: AuthFailureLimiterSettings) {
    this.maxPeers = s.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  /** 0 when `peer` may try; otherwise how long until its window ends. */
  retryAfterMs(peer: string): number {
    const w = this.peers.get(peer);
    if (!w || w.failures < this.s.limit) return 0;
    return Math.max(0, w.start + this.s.windowMs - this.s.now());
  }

  fail(peer: string): void {
    const now = this.s.now();
    const w = this.peers.get(peer);
    if (w && now - w.start < this.s.windowMs) {
      w.failures++;
      return;
    }
    this.peers.delete(peer);
    this.peers.set(peer, { start: now, failures: 1 });
    for (const oldest of this.peers.keys()) {
      if (this.peers.size <= this.maxPeers) break;
      this.peers.delete(oldest);
    }
  }

  get size(): number {
    return this.peers.size;
  }
}
