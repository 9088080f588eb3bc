/**
 * Interleaved rounds of short slices, shared by the benches that compare scenarios on one machine
 * (bench/run.ts, bench/forwardAuth.ts): within a round the scenarios take turns in slices, a round's
 * ratio is the median of its slices' ratios, and the rounds are summarised by median and min–max.
 */

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Half the min–max range, relative to the median, in % */
  spreadPct: number;
}

export const spread = (xs: number[]): Spread => {
  const m = median(xs);
  const [min, max] = [Math.min(...xs), Math.max(...xs)];
  const r = (x: number, d = 3) => +x.toFixed(d);
  return { median: r(m), min: r(min), max: r(max), spreadPct: r(((max - min) / 2 / m) * 100, 1) };
};

/**
 * A round's ratio of one scenario to another: the median of the ratios of their slices of the
 * same turn, seconds apart, so a burst of other work during one turn does not make the round's.
 */
export const roundRatio = <T>(mine: T[], floor: T[], f: (x: T) => number): number => median(mine.map((x, i) => f(x) / f(floor[i])));

/** The acceptance: every ratio to the floor within ±5 % over the rounds. */
export const SPREAD_LIMIT_PCT = 5;

/** "median (min–max, ±spread%)" of a ratio. */
export const formatRatio = (s: Spread): string => `${s.median.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)}, ±${s.spreadPct}%)`;

/** "median (min–max)" of an absolute figure, `d` decimals. */
export const formatRange = (s: Spread, d = 0): string => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
