import type { Logger } from '../logging/logger';
import type { OwnRateCount, RateCounterStore, RateWindow } from './ports';

/** A rate-limit answer: `remaining` as this instance knows the window's count across instances; `resetAt`, the window's end. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: number;
}

/** Admissions an instance may make past its confirmed claim without waiting: 1 % of the limit, none below 100. */
export function unconfirmedAllowance(limit: number): number {
  return Math.floor(limit / 100);
}

export interface RateLimiterSettings {
  store: RateCounterStore;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** RATE_LIMIT_SYNC_MS: how often sync() runs; a window ending within two of these is claimed ahead. */
  syncIntervalMs: number;
  /** How long VerifyKey waits for an exchange; past it, or when it fails, the instance counts alone. */
  exchangeTimeoutMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
}

export type ExchangePath = 'background' | 'verify';

/** A call that found the room left claimed by other instances this many times is refused: they hold it. */
const EXCHANGES_BEFORE_REFUSAL = 3;

class Window implements RateWindow {
  /** VALID answers given here. */
  used = 0;
  /** Admissions up to this count are backed by a claim written before a read that showed room. */
  confirmed = 0;
  // Plain numbers rather than objects: a window is kept per key used, so its size counts.
  /** What this instance's document holds (-1: unknown, after a failed exchange; written again). */
  writtenCount = 0;
  writtenClaim = 0;
  /** The other instances' documents, summed, at the last exchange. */
  othersCount = 0;
  othersClaim = 0;
  othersInstances = 0;
  /** An exchange has read the others' documents: `othersInstances` is known. */
  seen = false;
  /** Asked since the last exchange began. */
  active = false;
  /** Calls waiting for an exchange. */
  waiting = 0;
  /**
   * Until then the room left is taken to be claimed by other instances, and calls are refused
   * without an exchange: an instance gives back what it will not use at its next sync, not sooner.
   */
  claimedElsewhereUntil = 0;
  exchange?: Promise<void>;

  constructor(
    readonly keyId: string,
    readonly windowMs: number,
    readonly start: number,
    public limit: number,
  ) {}

  get end(): number {
    return this.start + this.windowMs;
  }
}

/**
 * Per-key rate limits in fixed windows aligned to multiples of the window (so every instance
 * means the same window), held across instances without a document two instances write.
 *
 * Each instance writes one document per key and window — its `count` of VALID answers, and its
 * `claim`: count plus a reserve it may spend without asking — and reads the others' sums
 * (`exchange`, write first, then read). An admission is decided in memory when it is
 *  - within the instance's confirmed claim (a claim written before a read showed room for it), or
 *  - one of at most unconfirmedAllowance(limit) past it, while the last read showed room;
 * otherwise VerifyKey waits for one exchange of that key. The background sync() exchanges every
 * key used since the last one, refreshing its reserve (a share of the room left), so keys far from
 * their limit are answered from memory. Any two exchanges that overlap, one sees the other's
 * claim, so confirmed admissions never add up past the limit; what can is the unconfirmed ones:
 * at most N × unconfirmedAllowance(limit) per window with N instances (docs/decisions/rate-limit-counters.md).
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  /**
   * The most other instances any exchange has seen in one window: how many instances a window
   * not read yet is likely to be shared with. Undefined until an exchange has succeeded.
   */
  private othersSeen?: number;
  /** True while exchanges fail: admissions are counted on this instance alone (fail open, never an error). */
  localOnly = false;
  /** Read by metrics at scrape time. */
  readonly stats = {
    exchanges: { background: { ok: 0, error: 0 }, verify: { ok: 0, error: 0 } },
    /** Admissions past the confirmed claim: what an overshoot is made of. */
    unconfirmed: 0,
  };

  constructor(private readonly d: RateLimiterSettings) {}

  /** A decision from memory, or, when the key's confirmed claim is spent, after one exchange. */
  take(keyId: string, limit: number, windowMs: number, now: number): RateDecision | Promise<RateDecision> {
    const w = this.window(keyId, windowMs, Math.floor(now / windowMs) * windowMs, limit);
    w.limit = limit;
    w.active = true;
    const verdict = this.verdict(w);
    return verdict === 'exchange' ? this.takeAfterExchange(w) : this.answer(w, verdict === 'admit');
  }

  /**
   * The background exchange: every window asked since the last one, or holding a reserve to give
   * back or a count to write; a window about to end opens its successor. Never rejects.
   */
  async sync(): Promise<void> {
    const now = this.d.now();
    const due: Window[] = [];
    for (const [id, w] of this.windows) {
      if (w.end <= now) {
        if (!w.exchange) this.windows.delete(id);
        continue;
      }
      // Claimed ahead, so a busy key is not left without a reserve when its window turns. Entries
      // added here are visited later in this loop.
      if (w.active && w.end - now <= 2 * this.d.syncIntervalMs) this.openNext(w);
      if (!w.exchange && (w.active || w.writtenCount !== w.used || w.writtenClaim !== w.used)) due.push(w);
    }
    if (due.length > 0) await this.exchange(due, 'background');
  }

  /** On shutdown: gives every reserve back, so other instances may use it in this window. */
  async close(): Promise<void> {
    await Promise.all([...this.windows.values()].flatMap((w) => w.exchange ?? []));
    for (const w of this.windows.values()) w.active = false;
    await this.sync();
  }

  private window(keyId: string, windowMs: number, start: number, limit: number): Window {
    const id = `${keyId}|${windowMs}|${start}`;
    let w = this.windows.get(id);
    if (!w) {
      w = new Window(keyId, windowMs, start, limit);
      this.windows.set(id, w);
    }
    return w;
  }

  private openNext(w: Window): void {
    const id = `${w.keyId}|${w.windowMs}|${w.end}`;
    if (this.windows.has(id)) return;
    const next = this.window(w.keyId, w.windowMs, w.end, w.limit);
    // Only for the share: the next window's sums are read by the exchange.
    next.othersInstances = w.othersInstances;
    next.seen = w.seen;
    next.active = true;
  }

  private verdict(w: Window): 'admit' | 'refuse' | 'exchange' {
    // Counts only grow within a window: these are spent whatever happened since the last read.
    if (w.used + w.othersCount >= w.limit) return 'refuse';
    if (this.localOnly) return 'admit';
    const unclaimed = w.limit - w.used - w.othersClaim;
    if (unclaimed > 0 && w.used < w.confirmed + unconfirmedAllowance(w.limit)) return 'admit';
    if (unclaimed <= 0 && this.d.now() < w.claimedElsewhereUntil) return 'refuse';
    return 'exchange';
  }

  private answer(w: Window, allowed: boolean): RateDecision {
    if (allowed) {
      w.used++;
      if (w.used > w.confirmed) this.stats.unconfirmed++;
    }
    return { allowed, limit: w.limit, remaining: allowed ? Math.max(0, w.limit - w.used - w.othersCount) : 0, resetAt: w.end };
  }

  private async takeAfterExchange(w: Window): Promise<RateDecision> {
    w.waiting++;
    try {
      // Each exchange either confirms more (to the calls waiting, first come first served) or
      // shows the room left claimed by other instances — and then maybe only for a moment: claims
      // made at once by instances that had not seen each other shrink at their next exchange.
      for (let exchanges = 1; ; exchanges++) {
        await this.awaitBounded(w.exchange ?? this.exchange([w], 'verify'));
        const verdict = this.verdict(w);
        if (verdict !== 'exchange') return this.answer(w, verdict === 'admit');
        if (w.limit - w.used - w.othersClaim <= 0 && exchanges >= EXCHANGES_BEFORE_REFUSAL) {
          w.claimedElsewhereUntil = this.d.now() + this.d.syncIntervalMs;
          return this.answer(w, false);
        }
      }
    } finally {
      w.waiting--;
    }
  }

  /** What a window reserves ahead: nothing when idle (its reserve goes back), else a share of the room. */
  private reserve(w: Window, path: ExchangePath): number {
    if (!w.active && w.waiting === 0) return 0;
    const unclaimed = Math.max(0, w.limit - w.used - w.othersClaim);
    // How many instances share a window not read yet is guessed from the others; before any
    // exchange, unknown: ask only for what is used, so instances starting at once do not each
    // claim what the others need.
    if (!w.seen && this.othersSeen === undefined) {
      return path === 'verify' ? Math.max(1, Math.min(w.waiting, unclaimed)) : Math.min(w.used, unclaimed);
    }
    const instances = (w.seen ? w.othersInstances : (this.othersSeen ?? 0)) + 1;
    // The background asks for half of an even split of the room, leaving some to instances it has
    // not seen yet; a call waiting asks at least for the calls waiting with it, up to an even split.
    const share = Math.floor(unclaimed / (2 * instances));
    return path === 'verify' ? Math.max(1, share, Math.min(w.waiting, Math.floor(unclaimed / instances))) : share;
  }

  /** One exchange for `windows`; never rejects (a failure switches to counting locally). */
  private exchange(windows: Window[], path: ExchangePath): Promise<void> {
    const plans = windows.map((w) => {
      const count = w.used;
      const claim = count + this.reserve(w, path);
      // Until the new claim is read back, only what both the old and the new one back is confirmed.
      w.confirmed = Math.min(w.confirmed, claim);
      w.active = false;
      return { w, count, claim };
    });
    const writes: OwnRateCount[] = plans
      .filter(({ w, count, claim }) => w.writtenCount !== count || w.writtenClaim !== claim)
      .map(({ w, count, claim }) => ({ keyId: w.keyId, windowMs: w.windowMs, start: w.start, count, claim }));
    const done: Promise<void> = this.d.store
      .exchange(writes, windows)
      .then(
        (others) => {
          plans.forEach(({ w, count, claim }, i) => {
            w.writtenCount = count;
            w.writtenClaim = claim;
            w.othersCount = others[i].count;
            w.othersClaim = others[i].claim;
            w.othersInstances = others[i].instances;
            w.seen = true;
            this.othersSeen = Math.max(this.othersSeen ?? 0, others[i].instances);
            w.confirmed = Math.max(count, Math.min(claim, w.limit - others[i].claim));
          });
          this.exchanged(path, null);
        },
        (err: unknown) => {
          for (const { w } of plans) w.writtenCount = w.writtenClaim = -1;
          this.exchanged(path, err);
        },
      )
      .finally(() => {
        for (const { w } of plans) if (w.exchange === done) w.exchange = undefined;
      });
    for (const { w } of plans) w.exchange = done;
    return done;
  }

  private awaitBounded(exchange: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.countAlone(true, 'verify', new Error(`no answer within ${this.d.exchangeTimeoutMs} ms`));
        resolve();
      }, this.d.exchangeTimeoutMs);
    });
    return Promise.race([exchange, late]).finally(() => clearTimeout(timer));
  }

  private exchanged(path: ExchangePath, err: unknown): void {
    this.stats.exchanges[path][err ? 'error' : 'ok']++;
    this.countAlone(Boolean(err), path, err);
  }

  private countAlone(alone: boolean, path: ExchangePath, err: unknown): void {
    if (alone === this.localOnly) return;
    this.localOnly = alone;
    if (!alone) {
      this.d.logger.info('rate-limit counters exchanged again: limits hold across instances again');
      return;
    }
    const { name, message } = err as Error;
    this.d.logger.warn(
      { path, err: { name, message } },
      'rate-limit counters could not be exchanged: counting on this instance alone until they can (VALID answers go on)',
    );
  }
}
