import { Backoff } from '../../../src/client/backoff';
import { KeyFeed, type WatchHandlers } from '../../../src/client/keyFeed';
import { KeyChangeKind, ResetReason, type WatchKeyChangesResponse } from '../../../src/gen/apikeys/v1/verify_service';

interface FakeStream {
  position: string;
  handlers: WatchHandlers;
  cancelled: boolean;
}

const ms = (n: number) => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1e6 });
const heartbeat = (position: string, lagMs = 0, intervalMs = 500): WatchKeyChangesResponse => ({
  position,
  event: { $case: 'heartbeat', value: { lag: ms(lagMs), interval: ms(intervalMs) } },
});
const change = (position: string, keyId: string): WatchKeyChangesResponse => ({
  position,
  event: { $case: 'keyChange', value: { keyId, keyHash: `hash-of-${keyId}`, kind: KeyChangeKind.KEY_CHANGE_KIND_CHANGED } },
});
const reset = (position: string, reason: ResetReason): WatchKeyChangesResponse => ({
  position,
  event: { $case: 'reset', value: { reason } },
});

function setup() {
  const streams: FakeStream[] = [];
  const calls: string[] = [];
  const feed = new KeyFeed(
    (position, handlers) => {
      const s: FakeStream = { position, handlers, cancelled: false };
      streams.push(s);
      return {
        cancel: () => {
          s.cancelled = true;
        },
      };
    },
    {
      changed: (hash, keyId) => calls.push(`changed ${keyId} ${hash}`),
      cleared: (reason) => calls.push(`cleared ${reason}`),
      confirmed: (asOf) => calls.push(`confirmed ${Date.now() - asOf} ms ago`),
      disconnected: (err, retryInMs) => calls.push(`disconnected (${err?.message ?? 'clean end'}), retry in ${retryInMs}`),
    },
    { backoff: new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 0), initialSilenceMs: 3_000, minSilenceMs: 1_000, now: Date.now },
  );
  feed.start();
  const current = () => streams[streams.length - 1];
  return { feed, streams, calls, current };
}

describe('KeyFeed', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('clears the cache at the first message of a stream opened without a position, and keeps the last position processed', () => {
    const { feed, streams, calls, current } = setup();
    expect(streams.map((s) => s.position)).toEqual(['']);
    current().handlers.message(heartbeat('p1', 40));
    current().handlers.message(change('p2', 'key_a'));
    expect(calls).toEqual(['cleared NEW_STREAM', 'confirmed 40 ms ago', 'changed key_a hash-of-key_a']);
    expect(feed.position).toBe('p2');
  });

  it('resumes from the last position after a failure, with growing backoff, and does not clear what the resume covers', () => {
    const { feed, streams, calls, current } = setup();
    current().handlers.message(heartbeat('p1'));
    current().handlers.message(change('p2', 'key_a'));
    current().handlers.ended(new Error('UNAVAILABLE'));
    expect(calls.at(-1)).toBe('disconnected (UNAVAILABLE), retry in 50');
    jest.advanceTimersByTime(50);
    expect(streams.map((s) => s.position)).toEqual(['', 'p2']);
    current().handlers.ended(new Error('UNAVAILABLE'));
    expect(calls.at(-1)).toBe('disconnected (UNAVAILABLE), retry in 100');
    jest.advanceTimersByTime(100);
    current().handlers.ended(); // a clean end (server shutdown) is reconnected too
    expect(calls.at(-1)).toBe('disconnected (clean end), retry in 200');
    jest.advanceTimersByTime(200);
    current().handlers.message(change('p3', 'key_b'));
    current().handlers.message(heartbeat('p4'));
    expect(calls.filter((c) => c.startsWith('cleared'))).toEqual(['cleared NEW_STREAM']);
    expect(feed.position).toBe('p4');
    // The heartbeat proved the stream: the next failure starts from the first delay.
    current().handlers.ended(new Error('UNAVAILABLE'));
    expect(calls.at(-1)).toBe('disconnected (UNAVAILABLE), retry in 50');
    expect(streams.map((s) => s.position)).toEqual(['', 'p2', 'p2', 'p2']);
  });

  it('clears everything on a RESET and carries on from its position', () => {
    const { feed, calls, current } = setup();
    current().handlers.message(heartbeat('p1'));
    current().handlers.message(reset('p9', ResetReason.RESET_REASON_SUBSCRIBER_BEHIND));
    expect(calls.at(-1)).toBe('cleared SUBSCRIBER_BEHIND');
    expect(feed.position).toBe('p9');
  });

  it('takes a silent stream for dead: 3 s before any heartbeat, then 3 heartbeat intervals (at least 1 s)', () => {
    const { streams, calls, current } = setup();
    jest.advanceTimersByTime(2_999);
    expect(streams).toHaveLength(1);
    jest.advanceTimersByTime(2); // the timer, then its setImmediate
    expect(streams[0].cancelled).toBe(true);
    expect(calls.at(-1)).toBe('disconnected (no message on WatchKeyChanges for 3000 ms), retry in 50');
    jest.advanceTimersByTime(50);
    current().handlers.message(heartbeat('p1', 0, 200));
    jest.advanceTimersByTime(999);
    expect(current().cancelled).toBe(false);
    current().handlers.message(heartbeat('p2', 0, 600));
    jest.advanceTimersByTime(1_799);
    expect(current().cancelled).toBe(false);
    jest.advanceTimersByTime(2);
    expect(current().cancelled).toBe(true);
    expect(calls.at(-1)).toBe('disconnected (no message on WatchKeyChanges for 1800 ms), retry in 50');
  });

  it('does not take a stream for dead when its message was only waiting to be read (the process was busy)', () => {
    const { streams, calls, current } = setup();
    jest.advanceTimersByTime(3_000); // the silence timer fires; its check waits for I/O to be read
    current().handlers.message(heartbeat('p1'));
    jest.advanceTimersByTime(1);
    expect(streams[0].cancelled).toBe(false);
    expect(calls.filter((c) => c.startsWith('disconnected'))).toEqual([]);
  });

  it('ignores whatever a replaced stream still delivers', () => {
    const { feed, streams, calls, current } = setup();
    current().handlers.message(heartbeat('p1'));
    const old = current();
    old.handlers.ended(new Error('UNAVAILABLE'));
    jest.advanceTimersByTime(50);
    const seen = calls.length;
    old.handlers.message(change('p7', 'key_late'));
    old.handlers.ended(new Error('late'));
    expect(calls.length).toBe(seen);
    expect(feed.position).toBe('p1');
    expect(streams).toHaveLength(2);
  });

  it('lets a message of a kind it does not know move the position, and nothing else', () => {
    const { feed, calls, current } = setup();
    current().handlers.message(heartbeat('p1'));
    const seen = calls.length;
    current().handlers.message({ position: 'p2' });
    expect(calls.length).toBe(seen);
    expect(feed.position).toBe('p2');
  });

  it('stops for good on close(): the stream is cancelled and nothing reconnects', () => {
    const { feed, streams, current } = setup();
    const stream = current();
    feed.close();
    expect(stream.cancelled).toBe(true);
    stream.handlers.ended(new Error('CANCELLED'));
    jest.advanceTimersByTime(60_000);
    expect(streams).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});
