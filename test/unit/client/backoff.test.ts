import { Backoff } from '../../../src/client/backoff';

describe('Backoff', () => {
  it('doubles each ceiling up to the cap, drawing each delay from its upper half', () => {
    const lowest = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 0);
    const highest = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 0.999_999);
    const draws = (b: Backoff) => Array.from({ length: 7 }, () => Math.round(b.next()));
    expect(draws(lowest)).toEqual([50, 100, 200, 400, 500, 500, 500]);
    expect(draws(highest)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('spreads clients that fail together', () => {
    let seed = 1;
    const random = () => (seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647;
    const fleet = Array.from({ length: 50 }, () => new Backoff({ initialMs: 1_000, maxMs: 10_000 }, random).next());
    expect(new Set(fleet.map((d) => Math.floor(d / 50))).size).toBeGreaterThan(5);
    expect(Math.min(...fleet)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...fleet)).toBeLessThanOrEqual(1_000);
  });

  it('starts again from the first delay after reset()', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000 }, () => 0);
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(50);
  });

  it('never overflows, however many attempts fail', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 5_000 }, () => 0.5);
    for (let i = 0; i < 2_000; i++) b.next();
    expect(b.next()).toBe(3_750);
  });
});
