import fc from 'fast-check';
import { RateLimiter, unconfirmedAllowance, type RateDecision } from '../../../src/domain/rateLimiter';
import type { RateCounterStore } from '../../../src/domain/ports';
import { SharedRateCounters } from '../../support/fakes/rateCounterStore';

const WINDOW_MS = 10_000;
/** A window boundary: windows are aligned to multiples of their length. */
const T0 = 1_750_000_000_000 - (1_750_000_000_000 % WINDOW_MS);

class Logs {
  readonly lines: { level: 'warn' | 'info'; msg: unknown }[] = [];
  warn = (_obj: unknown, msg?: string) => {
    this.lines.push({ level: 'warn', msg });
  };
  info = (msg: unknown) => {
    this.lines.push({ level: 'info', msg });
  };
}

/** One instance's limiter on `counters`, with a clock moved by hand. */
function instance(counters: SharedRateCounters, id: string, clock: { ms: number }, store: RateCounterStore = counters.forInstance(id)) {
  const logs = new Logs();
  const limiter = new RateLimiter({
    store,
    now: () => clock.ms,
    syncIntervalMs: 200,
    exchangeTimeoutMs: 50,
    logger: logs,
  });
  const take = (limit: number, keyId = 'key_a'): Promise<RateDecision> => Promise.resolve(limiter.take(keyId, limit, WINDOW_MS, clock.ms));
  return { limiter, logs, take, exchanges: () => counters.exchanges.get(id) ?? 0 };
}

async function takeMany(take: () => Promise<RateDecision>, n: number): Promise<RateDecision[]> {
  const out: RateDecision[] = [];
  for (let i = 0; i < n; i++) out.push(await take());
  return out;
}

describe('RateLimiter on one instance', () => {
  it('allows `limit` calls per aligned window, counting remaining down, then refuses', async () => {
    const clock = { ms: T0 + 1_234 };
    const a = instance(new SharedRateCounters(), 'a', clock);
    const decisions = await takeMany(() => a.take(3), 5);
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ]);
    for (const d of decisions) expect(d).toMatchObject({ limit: 3, resetAt: T0 + WINDOW_MS });
  });

  it('counts by fixed window: the next one starts at the boundary, whenever the first call came', async () => {
    const clock = { ms: T0 + WINDOW_MS - 1 };
    const a = instance(new SharedRateCounters(), 'a', clock);
    expect(await a.take(1)).toMatchObject({ allowed: true, resetAt: T0 + WINDOW_MS });
    expect(await a.take(1)).toMatchObject({ allowed: false });
    clock.ms = T0 + WINDOW_MS;
    expect(await a.take(1)).toMatchObject({ allowed: true, resetAt: T0 + 2 * WINDOW_MS });
  });

  it('keeps keys apart', async () => {
    const clock = { ms: T0 };
    const a = instance(new SharedRateCounters(), 'a', clock);
    expect((await a.take(1, 'key_a')).allowed).toBe(true);
    expect((await a.take(1, 'key_a')).allowed).toBe(false);
    expect((await a.take(1, 'key_b')).allowed).toBe(true);
  });

  it('claims only what it used at its first exchange; from then on half of the room, so a key far from its limit stays in memory', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    const doc = () => counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 }).get('a');
    // The first calls fit the unconfirmed allowance (1 % of 10 000): no exchange.
    await takeMany(() => a.take(10_000), 50);
    expect(a.exchanges()).toBe(0);
    await a.limiter.sync();
    // Before any exchange the instance cannot know how many share the window: it asks for what it used.
    expect(doc()).toEqual({ count: 50, claim: 100 });
    await takeMany(() => a.take(10_000), 50);
    await a.limiter.sync();
    expect(doc()).toEqual({ count: 100, claim: 100 + 4_950 });
    const decisions = await takeMany(() => a.take(10_000), 2_000);
    expect(decisions.every((d) => d.allowed)).toBe(true);
    expect(a.exchanges()).toBe(2);
  });

  it('gives an idle window’s reserve back at the next sync, and then leaves it alone', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    const doc = () => counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 }).get('a');
    await a.take(1_000);
    await a.limiter.sync();
    await a.take(1_000);
    await a.limiter.sync();
    expect(doc()).toEqual({ count: 2, claim: 2 + 499 });
    await a.limiter.sync(); // nothing asked since: the reserve goes back
    expect(doc()).toEqual({ count: 2, claim: 2 });
    await a.limiter.sync();
    expect(a.exchanges()).toBe(3);
  });

  it('claims the next window ahead when a busy window is about to end', async () => {
    const clock = { ms: T0 + WINDOW_MS - 1_000 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    await a.take(1_000);
    await a.limiter.sync();
    clock.ms = T0 + WINDOW_MS - 300;
    await a.take(1_000);
    await a.limiter.sync();
    expect(counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 + WINDOW_MS }).get('a')).toEqual({ count: 0, claim: 500 });
    clock.ms = T0 + WINDOW_MS;
    const before = a.exchanges();
    const decisions = await takeMany(() => a.take(1_000), 400);
    expect(decisions.every((d) => d.allowed)).toBe(true);
    expect(a.exchanges()).toBe(before);
  });

  it('forgets windows that ended: a sync after the end exchanges nothing', async () => {
    const clock = { ms: T0 };
    const a = instance(new SharedRateCounters(), 'a', clock);
    await a.take(1_000);
    clock.ms = T0 + WINDOW_MS;
    await a.limiter.sync();
    expect(a.exchanges()).toBe(0);
  });

  it('on shutdown gives every reserve back', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    await takeMany(() => a.take(1_000), 7);
    await a.limiter.sync();
    await a.take(1_000);
    await a.limiter.close();
    expect(counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 }).get('a')).toEqual({ count: 8, claim: 8 });
  });
});

describe('RateLimiter across instances', () => {
  it('counts what the other instances answered: remaining, and RATE_LIMITED, follow the global count', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    const b = instance(counters, 'b', clock);
    await takeMany(() => a.take(100), 60);
    await a.limiter.sync();
    await a.limiter.sync(); // idle: a's reserve goes back
    const decisions = await takeMany(() => b.take(100), 60);
    // b's first call fits its unconfirmed allowance before b knows of a; its second waits for an exchange.
    expect(decisions.slice(0, 2).map((d) => d.remaining)).toEqual([99, 100 - 60 - 2]);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(40);
    expect(decisions[decisions.length - 1]).toMatchObject({ allowed: false, remaining: 0 });
  });

  it('leaves to each instance what another has claimed; only unconfirmed admissions go past the limit', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    const b = instance(counters, 'b', clock);
    for (let i = 0; i < 2; i++) {
      await a.take(100);
      await a.limiter.sync();
    }
    // a's second exchange claimed half of the room: 2 + 49.
    expect(counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 }).get('a')).toEqual({ count: 2, claim: 51 });
    const bAllowed = (await takeMany(() => b.take(100), 100)).filter((d) => d.allowed).length;
    expect(bAllowed).toBe(49);
    // a spends its claim, then one more within its allowance: its last read, before b's, showed room.
    const aAllowed = 2 + (await takeMany(() => a.take(100), 100)).filter((d) => d.allowed).length;
    expect(aAllowed).toBe(52);
    expect(aAllowed + bAllowed).toBe(101);
    expect(aAllowed + bAllowed).toBeLessThanOrEqual(100 + 2 * unconfirmedAllowance(100));
  });

  // The promise, on a store that is linearizable (as one MongoDB primary, or FerretDB, is): however
  // exchanges and calls of N instances interleave, a window gets at most limit + N × allowance.
  it('never admits more than limit + N × unconfirmedAllowance(limit) in a window, whatever the interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 800 }),
        fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 64 }),
        async (n, limit, callsTo, yields) => {
          const clock = { ms: T0 };
          const counters = new SharedRateCounters();
          let y = 0;
          const yieldSome = async () => {
            for (let i = yields[y++ % yields.length]; i > 0; i--) await Promise.resolve();
          };
          counters.pause = yieldSome;
          const instances = Array.from({ length: n }, (_, i) => instance(counters, `i${i}`, clock));
          const syncs: Promise<void>[] = [];
          const decisions = await Promise.all(
            callsTo.map(async (to, i) => {
              await yieldSome();
              if (i % 37 === 0) syncs.push(...instances.map((x) => x.limiter.sync()));
              return instances[to % n].take(limit);
            }),
          );
          await Promise.all(syncs);
          const allowed = decisions.filter((d) => d.allowed).length;
          expect(allowed).toBeLessThanOrEqual(limit + n * unconfirmedAllowance(limit));
          expect(instances.every((x) => !x.limiter.localOnly)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with demand well above the limit, a window still gets close to its limit', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    let turn = 0;
    counters.pause = async () => {
      for (let i = turn++ % 4; i > 0; i--) await Promise.resolve();
    };
    const instances = ['a', 'b', 'c'].map((id) => instance(counters, id, clock));
    const decisions = await Promise.all(Array.from({ length: 1_000 }, (_, i) => instances[i % 3].take(100)));
    const allowed = decisions.filter((d) => d.allowed).length;
    expect(allowed).toBeLessThanOrEqual(103);
    expect(allowed).toBeGreaterThanOrEqual(90);
  });
});

describe('RateLimiter when storage fails', () => {
  it('keeps answering VALID, counting on this instance alone, says so once, and recovers', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const a = instance(counters, 'a', clock);
    counters.faults.failNext('exchange', 2);
    const decisions = await takeMany(() => a.take(5), 7);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(a.limiter.localOnly).toBe(true);
    expect(a.limiter.stats.exchanges.verify).toEqual({ ok: 0, error: 1 });
    await a.limiter.sync(); // fails too
    expect(a.logs.lines.map((l) => l.level)).toEqual(['warn']);
    await a.limiter.sync();
    expect(a.limiter.localOnly).toBe(false);
    expect(a.logs.lines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(a.limiter.stats.exchanges.background).toEqual({ ok: 1, error: 1 });
    // What was counted alone was written: the window stays spent.
    expect(counters.window({ keyId: 'key_a', windowMs: WINDOW_MS, start: T0 }).get('a')).toMatchObject({ count: 5 });
  });

  it('does not keep a call waiting past the exchange timeout', async () => {
    const clock = { ms: T0 };
    const counters = new SharedRateCounters();
    const hanging: RateCounterStore = { exchange: () => new Promise(() => {}) };
    const a = instance(counters, 'a', clock, hanging);
    await expect(a.take(5)).resolves.toMatchObject({ allowed: true, remaining: 4 });
    expect(a.limiter.localOnly).toBe(true);
    expect(a.logs.lines).toEqual([{ level: 'warn', msg: expect.stringContaining('counting on this instance alone') }]);
  });
});
