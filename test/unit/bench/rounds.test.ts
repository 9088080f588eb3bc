import { formatRange, formatRatio, median, roundRatio, spread } from '../../../bench/rounds';

describe('median', () => {
  it('is the middle value, or the mean of the two middle ones, whatever the order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });
});

describe('spread', () => {
  it('gives median, min, max and half the range over the median in %', () => {
    expect(spread([0.9, 1, 1.1])).toEqual({ median: 1, min: 0.9, max: 1.1, spreadPct: 10 });
    expect(spread([2, 2])).toEqual({ median: 2, min: 2, max: 2, spreadPct: 0 });
  });
});

describe('roundRatio', () => {
  it('is the median of the ratios of slices of the same turn, so one disturbed turn does not make it', () => {
    const mine = [{ rps: 90 }, { rps: 45 }, { rps: 88 }];
    const floor = [{ rps: 100 }, { rps: 100 }, { rps: 100 }];
    expect(roundRatio(mine, floor, (x) => x.rps)).toBeCloseTo(0.88, 10);
    // Pairs slice i with slice i: the order of turns matters, not the sizes' order.
    expect(roundRatio([{ v: 10 }, { v: 30 }, { v: 20 }], [{ v: 10 }, { v: 10 }, { v: 40 }], (x) => x.v)).toBe(1);
  });
});

describe('formatting', () => {
  it('prints a ratio with its range and spread, and a figure with its range', () => {
    expect(formatRatio({ median: 0.9, min: 0.88, max: 0.95, spreadPct: 3.9 })).toBe('0.900 (0.880–0.950, ±3.9%)');
    expect(formatRange({ median: 12.34, min: 11, max: 15.56, spreadPct: 0 }, 1)).toBe('12.3 (11.0–15.6)');
  });
});
