import { QueryLimits } from '../../../src/storage/mongo';

describe('QueryLimits', () => {
  it('background work (no calling RPC) gets the operation timeout alone', () => {
    expect(new QueryLimits(10_000).options()).toEqual({ maxTimeMS: 10_000 });
    expect(new QueryLimits(10_000, () => undefined).options()).toEqual({ maxTimeMS: 10_000 });
  });

  it("a call's query is cut to the time its caller still waits, and carries the call's signal", () => {
    const signal = new AbortController().signal;
    const soon = new QueryLimits(10_000, () => ({ deadline: Date.now() + 3_000, signal })).options();
    expect(soon.signal).toBe(signal);
    expect(soon.maxTimeMS).toBeGreaterThan(2_000);
    expect(soon.maxTimeMS).toBeLessThanOrEqual(3_000);
    expect(new QueryLimits(10_000, () => ({ deadline: Date.now() + 60_000, signal })).options().maxTimeMS).toBe(10_000);
    expect(new QueryLimits(10_000, () => ({ deadline: Infinity })).options().maxTimeMS).toBe(10_000);
  });

  it('a call already past its deadline gets 1 ms, never 0 (which MongoDB reads as no limit)', () => {
    expect(new QueryLimits(10_000, () => ({ deadline: Date.now() - 5_000 })).options().maxTimeMS).toBe(1);
  });
});
