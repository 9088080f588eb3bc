import { latestPerKey, SKEW_MARGIN_MS } from './freshness';
import type { KeyChange, LoggedChange } from './model';
import type { ChangeLog, Clock } from './ports';

export type ResetReason = 'POSITION_EXPIRED' | 'POSITION_UNKNOWN' | 'SUBSCRIBER_BEHIND';

/** What WatchKeyChanges sends. Every message carries the position to resume from once it is processed. */
export type FeedMessage =
  | { type: 'change'; position: string; keyId: string; hash: string; kind: KeyChange['kind'] }
  | { type: 'heartbeat'; position: string; lagMs: number; intervalMs: number }
  | { type: 'reset'; position: string; reason: ResetReason };

/** One subscriber's stream, as the transport provides it. */
export interface FeedSink {
  send(message: FeedMessage): void;
  /** Messages sent that the subscriber's connection has not taken yet. */
  readonly pending: number;
  /** Ends the stream cleanly. */
  end(): void;
  /** Ends the stream with an error: what the subscriber missed could not be read. */
  fail(err: unknown): void;
}

export interface ChangeFeedDeps {
  changeLog: Pick<ChangeLog, 'since'>;
  now: Clock;
  /** KEY_CHANGE_RETENTION_SECONDS in ms: a position older than what the log still holds gets a RESET. */
  retentionMs: number;
  /** INVALIDATION_POLL_MS: a heartbeat follows every poll. */
  pollIntervalMs: number;
  /** WATCH_MAX_PENDING_EVENTS: per subscriber, unread messages and changes to replay. */
  maxPending: number;
}

/**
 * A position is the `since` of the change-log poll that would pick up everything not sent yet:
 * resuming from it replays the log from there, as that poll would. Plain wall-clock
 * milliseconds, so any instance on the same log can resume a position another one issued.
 */
const POSITION = /^w1_(\d{1,15})$/;
export const encodePosition = (ms: number): string => `w1_${ms}`;

function decodePosition(position: string): number | null {
  const m = POSITION.exec(position);
  return m ? Number(m[1]) : null;
}

class Subscription {
  /** Messages held while what the subscriber missed is read from the log; null once it is live. */
  queue: FeedMessage[] | null = null;
  ended = false;

  constructor(readonly sink: FeedSink) {}
}

/**
 * WatchKeyChanges: every change this instance learns of — its own at once (onKeyChanged), other
 * instances' when its poll of the change log reads them — goes to every subscriber, once per log
 * entry. After each successful poll a heartbeat tells subscribers how current they are, so a
 * subscriber can hold the same revocation bound as this instance's own cache. A subscriber that
 * does not keep up is sent a RESET and dropped: nothing is buffered for it beyond maxPending.
 */
export class ChangeFeed {
  private readonly subscriptions = new Set<Subscription>();
  /** The `since` of the next poll: every entry logged before it has been sent (within the skew margin). */
  private watermark: number;
  /** Start of the last successful poll: every change logged before it has been sent. */
  private syncedAt: number;
  /** Log entries sent, by id, with their log time: polls re-read a margin, and see this instance's own changes again. */
  private readonly sent = new Map<string, number>();
  private closed = false;
  /** Messages sent to subscribers, by type, and RESETs by reason: read by the metrics at scrape time. */
  readonly sentByType: Record<FeedMessage['type'], number> = { change: 0, heartbeat: 0, reset: 0 };
  readonly resetsByReason: Record<ResetReason, number> = { POSITION_EXPIRED: 0, POSITION_UNKNOWN: 0, SUBSCRIBER_BEHIND: 0 };

  constructor(private readonly d: ChangeFeedDeps) {
    const now = d.now().getTime();
    // As the poller starts (invalidationTask) and as the Verifier trusts its empty cache.
    this.watermark = now - SKEW_MARGIN_MS;
    this.syncedAt = now;
  }

  get subscribers(): number {
    return this.subscriptions.size;
  }

  /**
   * Starts a subscription; returns the function that ends it (the subscriber went away). With a
   * position, what was logged since is replayed first, or a RESET says why it cannot be.
   */
  subscribe(position: string, sink: FeedSink): () => void {
    const sub = new Subscription(sink);
    if (this.closed) {
      sink.end();
      return () => undefined;
    }
    this.subscriptions.add(sub);
    const unsubscribe = () => this.drop(sub);
    if (position === '') {
      this.startLive(sub, this.syncedAt);
      return unsubscribe;
    }
    const since = decodePosition(position);
    const now = this.d.now().getTime();
    // A position is issued SKEW_MARGIN_MS behind the issuer's clock: one beyond now + the margin was not issued by this log.
    if (since === null || since > now + SKEW_MARGIN_MS) {
      this.reset(sub, 'POSITION_UNKNOWN');
      this.startLive(sub, this.syncedAt);
    } else if (since < now - this.d.retentionMs + SKEW_MARGIN_MS) {
      // The retention sweep (on any instance, whose clock may run ahead by the margin) may have pruned entries after it.
      this.reset(sub, 'POSITION_EXPIRED');
      this.startLive(sub, this.syncedAt);
    } else {
      sub.queue = [];
      void this.replay(sub, since);
    }
    return unsubscribe;
  }

  /** A change made through this instance, already applied: sent at once. */
  published(change: KeyChange): void {
    this.sent.set(change._id, change.at.getTime());
    this.broadcast(this.changeMessage(change, encodePosition(this.watermark)));
  }

  /** A poll that started at `startedAt` read `changes`; the next one reads from `nextSince`. */
  polled(changes: LoggedChange[], nextSince: Date, startedAt: Date): void {
    // Sent at the position of this poll's own `since`: a subscriber that stops part way gets them all again.
    const position = encodePosition(this.watermark);
    for (const change of changes) {
      if (this.sent.has(change._id)) continue;
      this.sent.set(change._id, change.at.getTime());
      this.broadcast(this.changeMessage(change, position));
    }
    this.syncedAt = Math.max(this.syncedAt, startedAt.getTime());
    this.watermark = Math.max(this.watermark, nextSince.getTime());
    // Entries logged before the next poll's `since` are never read again.
    for (const [id, at] of this.sent) if (at < this.watermark) this.sent.delete(id);
    this.broadcast(this.heartbeat(this.syncedAt));
  }

  /** Shutdown: every stream ends now, so none holds the server's drain; later subscriptions end at once. */
  close(): void {
    this.closed = true;
    for (const sub of this.subscriptions) this.end(sub);
  }

  private async replay(sub: Subscription, since: number): Promise<void> {
    const startedAt = this.d.now().getTime();
    let missed: LoggedChange[];
    try {
      missed = latestPerKey(await this.d.changeLog.since(new Date(since)));
    } catch (err) {
      if (sub.ended) return;
      this.drop(sub);
      sub.sink.fail(err);
      return;
    }
    if (sub.ended) return;
    const queued = sub.queue ?? [];
    if (missed.length > this.d.maxPending) {
      this.reset(sub, 'SUBSCRIBER_BEHIND');
    } else {
      const position = encodePosition(since);
      for (const change of missed) this.send(sub, this.changeMessage(change, position));
    }
    for (const message of queued) this.send(sub, message);
    this.startLive(sub, Math.max(startedAt, this.syncedAt));
  }

  /** The subscriber takes live messages from now on; the first says how current it is. */
  private startLive(sub: Subscription, currentAsOf: number): void {
    sub.queue = null;
    this.send(sub, this.heartbeat(currentAsOf));
  }

  private broadcast(message: FeedMessage): void {
    for (const sub of this.subscriptions) {
      if (sub.queue) {
        if (sub.queue.length < this.d.maxPending) sub.queue.push(message);
        else this.fellBehind(sub);
      } else if (sub.sink.pending < this.d.maxPending) {
        this.send(sub, message);
      } else {
        this.fellBehind(sub);
      }
    }
  }

  private fellBehind(sub: Subscription): void {
    this.reset(sub, 'SUBSCRIBER_BEHIND');
    this.end(sub);
  }

  private reset(sub: Subscription, reason: ResetReason): void {
    this.resetsByReason[reason]++;
    this.send(sub, { type: 'reset', position: encodePosition(this.watermark), reason });
  }

  private send(sub: Subscription, message: FeedMessage): void {
    this.sentByType[message.type]++;
    sub.sink.send(message);
  }

  private heartbeat(currentAsOf: number): FeedMessage {
    return {
      type: 'heartbeat',
      position: encodePosition(this.watermark),
      lagMs: Math.max(0, this.d.now().getTime() - currentAsOf),
      intervalMs: this.d.pollIntervalMs,
    };
  }

  private changeMessage(change: LoggedChange, position: string): FeedMessage {
    return { type: 'change', position, keyId: change.key_id, hash: change.hash, kind: change.kind };
  }

  private end(sub: Subscription): void {
    this.drop(sub);
    sub.sink.end();
  }

  private drop(sub: Subscription): void {
    sub.ended = true;
    this.subscriptions.delete(sub);
  }
}
