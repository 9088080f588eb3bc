import { AuthFailureLimiter } from '../../../src/domain/authFailureLimiter';

function limiter(maxPeers?: number) {
  let now = 1_000_000;
  const l = new AuthFailureLimiter({ limit: 3, windowMs: 10_000, now: () => now, maxPeers });
  return { l, advance: (ms: number) => (now += ms) };
}

describe('AuthFailureLimiter', () => {
  it('lets a peer try until it has `limit` failures in the window, then says how long to wait', () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 3; i++) {
      expect(l.retryAfterMs('10.0.0.1')).toBe(0);
      l.fail('10.0.0.1');
      advance(1_000);
    }
    // Window started at the first failure, 3 s ago.
    expect(l.retryAfterMs('10.0.0.1')).toBe(7_000);
    advance(6_999);
    expect(l.retryAfterMs('10.0.0.1')).toBe(1);
    advance(1);
    expect(l.retryAfterMs('10.0.0.1')).toBe(0);
  });

  it('starts a new window after the old one ends: old failures no longer count', () => {
    const { l, advance } = limiter();
    l.fail('p');
    l.fail('p');
    advance(10_000);
    l.fail('p');
    l.fail('p');
    expect(l.retryAfterMs('p')).toBe(0);
    l.fail('p');
    expect(l.retryAfterMs('p')).toBe(10_000);
  });

  it('counts each peer on its own', () => {
    const { l } = limiter();
    for (let i = 0; i < 3; i++) l.fail('a');
    expect(l.retryAfterMs('a')).toBeGreaterThan(0);
    expect(l.retryAfterMs('b')).toBe(0);
  });

  it('remembers at most maxPeers peers, forgetting the one whose window started first', () => {
    const { l, advance } = limiter(2);
    for (let i = 0; i < 3; i++) l.fail('first');
    advance(1);
    l.fail('second');
    advance(1);
    l.fail('third');
    expect(l.size).toBe(2);
    expect(l.retryAfterMs('first')).toBe(0);
    // A new window for an existing peer moves it to the back of the line.
    advance(10_000);
    l.fail('second');
    l.fail('fourth');
    expect(l.size).toBe(2);
    l.fail('second');
    l.fail('second');
    expect(l.retryAfterMs('second')).toBeGreaterThan(0);
  });

  it('stays bounded under a million distinct peers', () => {
    const { l, advance } = limiter(1_000);
    for (let i = 0; i < 1_000_000; i++) {
      l.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
      if (i % 1000 === 0) advance(1);
    }
    expect(l.size).toBe(1_000);
  });
});
