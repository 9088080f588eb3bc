import { ChangeFeed, encodePosition, type FeedMessage, type FeedSink } from '../../../src/domain/changeFeed';
import { SKEW_MARGIN_MS } from '../../../src/domain/freshness';
import type { KeyChange, LoggedChange } from '../../../src/domain/model';

const START = Date.parse('2025-06-01T12:00:00.000Z');
const RETENTION_MS = 3_600_000;
const POLL_MS = 500;
const MAX_PENDING = 5;

class FakeSink implements FeedSink {
  readonly messages: FeedMessage[] = [];
  pending = 0;
  ended = false;
  failed?: unknown;
  send(m: FeedMessage): void {
    if (this.ended || this.failed) throw new Error('sent after the stream ended');
    this.messages.push(m);
  }
  end(): void {
    this.ended = true;
  }
  fail(err: unknown): void {
    this.failed = err;
  }
  get types(): string[] {
    return this.messages.map((m) => (m.type === 'change' ? `change:${m.keyId}` : m.type === 'reset' ? `reset:${m.reason}` : 'heartbeat'));
  }
}

function setup() {
  let clock = START;
  const entries: KeyChange[] = [];
  let release: (() => void) | undefined;
  const log = {
    failing: false,
    /** While set, a read waits until release() (a replay in progress). */
    hold: false,
    since: async (since: Date): Promise<LoggedChange[]> => {
      if (log.hold) await new Promise<void>((r) => (release = r));
      if (log.failing) throw new Error('storage down');
      return entries.filter((e) => e.at >= since);
    },
  };
  const feed = new ChangeFeed({
    changeLog: log,
    now: () => new Date(clock),
    retentionMs: RETENTION_MS,
    pollIntervalMs: POLL_MS,
    maxPending: MAX_PENDING,
  });
  let n = 0;
  const change = (keyId: string, at = clock, kind: KeyChange['kind'] = 'changed'): KeyChange => {
    const c = { _id: `chg_${n++}`, key_id: keyId, org_id: 'org_x', hash: `hash-of-${keyId}`, etag: `e${n}`, kind, at: new Date(at) };
    entries.push(c);
    return c;
  };
  /** A poll that started now and read everything logged since `since`. */
  const poll = (since: number) => {
    feed.polled(
      entries.filter((e) => e.at.getTime() >= since),
      new Date(clock - SKEW_MARGIN_MS),
      new Date(clock),
    );
  };
  const subscribe = (position = '') => {
    const sink = new FakeSink();
    const unsubscribe = feed.subscribe(position, sink);
    return { sink, unsubscribe };
  };
  return {
    feed,
    log,
    change,
    poll,
    subscribe,
    advance: (ms: number) => (clock += ms),
    now: () => clock,
    release: () => release?.(),
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('ChangeFeed', () => {
  it('starts a subscription without a position with a heartbeat saying how current it is', () => {
    const t = setup();
    t.advance(300);
    const { sink } = t.subscribe();
    expect(sink.messages).toEqual([
      { type: 'heartbeat', position: encodePosition(START - SKEW_MARGIN_MS), lagMs: 300, intervalMs: POLL_MS },
    ]);
  });

  it('sends this instance’s own changes at once, and every logged change once however often polls read it', () => {
    const t = setup();
    const one = t.subscribe();
    const two = t.subscribe();
    const own = t.change('key_own');
    t.feed.published(own);
    expect(one.sink.types).toEqual(['heartbeat', 'change:key_own']);
    t.change('key_other');
    t.advance(POLL_MS);
    t.poll(START - SKEW_MARGIN_MS);
    t.advance(POLL_MS);
    t.poll(START - SKEW_MARGIN_MS); // the margin: the same entries again
    for (const { sink } of [one, two]) {
      expect(sink.types).toEqual(['heartbeat', 'change:key_own', 'change:key_other', 'heartbeat', 'heartbeat']);
    }
    expect(one.sink.messages[1]).toEqual({
      type: 'change',
      position: encodePosition(START - SKEW_MARGIN_MS),
      keyId: 'key_own',
      hash: 'hash-of-key_own',
      kind: 'changed',
    });
  });

  it('moves the position forward with each poll, and says in each heartbeat how long ago the poll started', () => {
    const t = setup();
    const { sink } = t.subscribe();
    t.advance(POLL_MS);
    const pollStart = t.now();
    t.change('key_a');
    t.advance(40); // the poll's own duration
    t.feed.polled([], new Date(pollStart - SKEW_MARGIN_MS), new Date(pollStart));
    expect(sink.messages.at(-1)).toEqual({
      type: 'heartbeat',
      position: encodePosition(pollStart - SKEW_MARGIN_MS),
      lagMs: 40,
      intervalMs: POLL_MS,
    });
  });

  it('resumes a position: what was logged since is replayed (once per key), then what came meanwhile, then a heartbeat', async () => {
    const t = setup();
    const position = encodePosition(t.now() - SKEW_MARGIN_MS);
    t.change('key_before', t.now() - SKEW_MARGIN_MS - 1);
    t.advance(1_000);
    t.change('key_a');
    t.change('key_b');
    t.change('key_a');
    t.log.hold = true;
    const { sink } = t.subscribe(position);
    t.feed.published(t.change('key_live'));
    expect(sink.messages).toEqual([]); // held until the replay is sent
    t.release();
    await flush();
    // key_live was logged before the replay read the log, so it comes twice: dropping a cache entry twice is harmless.
    expect(sink.types).toEqual(['change:key_a', 'change:key_b', 'change:key_live', 'change:key_live', 'heartbeat']);
    // Replayed messages carry the position asked for: a subscriber that stops part way asks again from there.
    expect(sink.messages.slice(0, 2).map((m) => m.position)).toEqual([position, position]);
  });

  it.each([
    ['older than the log holds', () => encodePosition(START - RETENTION_MS), 'POSITION_EXPIRED'],
    ['from the future', () => encodePosition(START + SKEW_MARGIN_MS + 1), 'POSITION_UNKNOWN'],
    ['not one of ours', () => 'w1_abc', 'POSITION_UNKNOWN'],
    ['another format', () => 'v2_1700000000000', 'POSITION_UNKNOWN'],
  ])('answers a position %s with a RESET, then goes on live', (_label, position, reason) => {
    const t = setup();
    const { sink } = t.subscribe(position());
    expect(sink.types).toEqual([`reset:${reason}`, 'heartbeat']);
    t.feed.published(t.change('key_a'));
    expect(sink.types.at(-1)).toBe('change:key_a');
    expect(sink.ended).toBe(false);
  });

  it('sends a RESET instead of a replay of more keys than maxPending, and goes on live', async () => {
    const t = setup();
    const position = encodePosition(t.now() - SKEW_MARGIN_MS);
    for (let i = 0; i <= MAX_PENDING; i++) t.change(`key_${i}`);
    const { sink } = t.subscribe(position);
    await flush();
    expect(sink.types).toEqual(['reset:SUBSCRIBER_BEHIND', 'heartbeat']);
    expect(sink.ended).toBe(false);
  });

  it('drops a subscriber that does not read: a RESET, the end of its stream, nothing more; the others carry on', () => {
    const t = setup();
    const slow = t.subscribe();
    const fast = t.subscribe();
    slow.sink.pending = MAX_PENDING;
    t.feed.published(t.change('key_a'));
    expect(slow.sink.types).toEqual(['heartbeat', 'reset:SUBSCRIBER_BEHIND']);
    expect(slow.sink.ended).toBe(true);
    t.feed.published(t.change('key_b'));
    expect(slow.sink.messages).toHaveLength(2);
    expect(fast.sink.types).toEqual(['heartbeat', 'change:key_a', 'change:key_b']);
    expect(t.feed.subscribers).toBe(1);
  });

  it('drops a subscriber whose messages pile up while its replay is read', async () => {
    const t = setup();
    t.log.hold = true;
    const { sink } = t.subscribe(encodePosition(t.now() - SKEW_MARGIN_MS));
    for (let i = 0; i <= MAX_PENDING; i++) t.feed.published(t.change(`key_${i}`));
    expect(sink.types).toEqual(['reset:SUBSCRIBER_BEHIND']);
    expect(sink.ended).toBe(true);
    t.release();
    await flush();
    expect(sink.messages).toHaveLength(1);
  });

  it('fails the stream when what was missed cannot be read', async () => {
    const t = setup();
    t.log.failing = true;
    const { sink } = t.subscribe(encodePosition(t.now() - SKEW_MARGIN_MS));
    await flush();
    expect(sink.failed).toEqual(new Error('storage down'));
    expect(sink.messages).toEqual([]);
    expect(t.feed.subscribers).toBe(0);
  });

  it('stops sending to a subscriber that went away', () => {
    const t = setup();
    const { sink, unsubscribe } = t.subscribe();
    unsubscribe();
    t.feed.published(t.change('key_a'));
    expect(sink.types).toEqual(['heartbeat']);
  });

  it('ends every stream on close, and any opened after it at once', () => {
    const t = setup();
    const one = t.subscribe();
    t.feed.close();
    expect(one.sink.ended).toBe(true);
    const late = t.subscribe();
    expect(late.sink).toMatchObject({ ended: true, messages: [] });
    t.feed.published(t.change('key_a'));
    expect(one.sink.messages).toHaveLength(1);
  });
});
