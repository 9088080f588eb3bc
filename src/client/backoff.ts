export interface BackoffSettings {
  /** The first delay's ceiling. */
  initialMs: number;
  /** No delay is longer than this. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": the n-th delay is drawn from [c/2, c], where
 * c = min(maxMs, initialMs × 2^n). The floor keeps a fleet of clients from hammering a server
 * that just came back; the spread keeps them from arriving together.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly s: BackoffSettings,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.s.maxMs, this.s.initialMs * 2 ** this.attempt);
    this.attempt++;
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  /** The connection proved itself: the next failure starts from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
