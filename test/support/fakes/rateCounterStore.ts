import type { OthersRateCounts, OwnRateCount, RateCounterStore, RateWindow } from '../../../src/domain/ports';
import { RateLimiter } from '../../../src/domain/rateLimiter';
import { Faults } from './faults';

const windowKey = (w: RateWindow) => `${w.keyId}|${w.windowMs}|${w.start}`;

/**
 * Every instance's rate counters in one map, as one database holds them: each write and the read
 * are atomic, and an exchange writes before it reads. `pause` runs before each write and before
 * the read, so a test can let other instances' exchanges and calls run in between.
 */
export class SharedRateCounters {
  /** By `${window}|${instance}`. */
  readonly docs = new Map<string, OwnRateCount & { instance: string }>();
  readonly faults = new Faults<'exchange'>();
  /** Exchanges by instance. */
  readonly exchanges = new Map<string, number>();
  pause: () => Promise<void> = () => Promise.resolve();

  forInstance(instance: string): RateCounterStore {
    return {
      exchange: async (own: readonly OwnRateCount[], windows: readonly RateWindow[]): Promise<OthersRateCounts[]> => {
        this.faults.check('exchange');
        this.exchanges.set(instance, (this.exchanges.get(instance) ?? 0) + 1);
        for (const c of own) {
          await this.pause();
          this.docs.set(`${windowKey(c)}|${instance}`, { ...c, instance });
        }
        await this.pause();
        return windows.map((w) => {
          const others = [...this.docs.values()].filter((d) => d.instance !== instance && windowKey(d) === windowKey(w));
          return {
            count: others.reduce((n, d) => n + d.count, 0),
            claim: others.reduce((n, d) => n + d.claim, 0),
            instances: others.length,
          };
        });
      },
    };
  }

  /** The documents of one window, by instance. */
  window(w: RateWindow): Map<string, { count: number; claim: number }> {
    return new Map(
      [...this.docs.values()].filter((d) => windowKey(d) === windowKey(w)).map((d) => [d.instance, { count: d.count, claim: d.claim }]),
    );
  }
}

/** A limiter with counters of its own (one instance), silent: for tests of what uses it. */
export function soleRateLimiter(now: () => number): RateLimiter {
  return new RateLimiter({
    store: new SharedRateCounters().forInstance('sole'),
    now,
    syncIntervalMs: 200,
    exchangeTimeoutMs: 1_000,
    logger: { warn: () => {}, info: () => {} },
  });
}
