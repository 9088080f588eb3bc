import { RateLimiter } from '../../../src/domain/rateLimiter';

describe('RateLimiter.take', () => {
  it('allows `limit` calls per window, counting remaining down, then refuses', () => {
    const r = new RateLimiter();
    const decisions = [0, 10, 20, 30, 40].map((t) => r.take('k', 3, 1000, 5_000 + t));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ]);
    for (const d of decisions) {
      expect(d.limit).toBe(3);
      expect(d.resetAt).toBe(6_000); // the window started at the first call
    }
  });

  it('starts a new window exactly windowMs after the first call', () => {
    const r = new RateLimiter();
    r.take('k', 1, 1000, 500);
    expect(r.take('k', 1, 1000, 1499)).toEqual({ allowed: false, limit: 1, remaining: 0, resetAt: 1500 });
    expect(r.take('k', 1, 1000, 1500)).toEqual({ allowed: true, limit: 1, remaining: 0, resetAt: 2500 });
    expect(r.take('k', 1, 1000, 1501).allowed).toBe(false);
  });

  it('a refused call does not consume from the next window', () => {
    const r = new RateLimiter();
    r.take('k', 2, 1000, 0);
    r.take('k', 2, 1000, 1);
    for (let i = 0; i < 10; i++) expect(r.take('k', 2, 1000, 2 + i).allowed).toBe(false);
    expect(r.take('k', 2, 1000, 1000)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('keeps keys apart', () => {
    const r = new RateLimiter();
    expect(r.take('a', 1, 1000, 0).allowed).toBe(true);
    expect(r.take('a', 1, 1000, 1).allowed).toBe(false);
    expect(r.take('b', 1, 1000, 1)).toEqual({ allowed: true, limit: 1, remaining: 0, resetAt: 1001 });
    expect(r.take('a', 1, 1000, 2).allowed).toBe(false);
  });

  it('a limit of 0 refuses everything', () => {
    expect(new RateLimiter().take('k', 0, 1000, 0)).toMatchObject({ allowed: false, remaining: 0 });
  });
});

describe('RateLimiter.prune', () => {
  // A window dropped by prune is indistinguishable from a new key: the next take starts afresh.
  it('drops windows older than maxWindowMs, keeps younger ones', () => {
    const r = new RateLimiter();
    r.take('old', 1, 60_000, 0);
    r.take('young', 1, 60_000, 9_500);
    r.prune(10_000, 10_000);
    expect(r.take('old', 1, 60_000, 10_000)).toMatchObject({ allowed: true, resetAt: 70_000 });
    expect(r.take('young', 1, 60_000, 10_000)).toMatchObject({ allowed: false, resetAt: 69_500 });
  });

  it('keeps a window whose age is below maxWindowMs', () => {
    const r = new RateLimiter();
    r.take('k', 1, 60_000, 0);
    r.prune(59_999, 60_000);
    expect(r.take('k', 1, 60_000, 59_999).allowed).toBe(false);
  });
});
