import { ResetReason, type KeyChangeKind, type WatchKeyChangesResponse } from '../gen/apikeys/v1/verify_service';
import { durationMs } from './answers';
import type { Backoff } from './backoff';

/** How one WatchKeyChanges call reports back (the verifier adapts grpc-js's stream to it). */
export interface WatchHandlers {
  message(m: WatchKeyChangesResponse): void;
  /** The stream is over: `err` unless the server ended it cleanly (it does at shutdown). */
  ended(err?: Error): void;
}

/** Opens WatchKeyChanges from `position` ('' for "from now"). */
export type OpenWatch = (position: string, handlers: WatchHandlers) => { cancel(): void };

/** Why everything cached must go: a RESET's reason, or NEW_STREAM for a stream that could not resume. */
export type ClearReason = 'NEW_STREAM' | 'POSITION_EXPIRED' | 'POSITION_UNKNOWN' | 'SUBSCRIBER_BEHIND' | 'UNSPECIFIED';

export interface FeedListener {
  /** A key changed (or was created): drop what is cached for it. */
  changed(hash: string, keyId: string, kind: KeyChangeKind): void;
  /** What is cached may have missed changes: drop all of it. */
  cleared(reason: ClearReason): void;
  /** The server has sent every change made before `asOf` (this process's clock, ms). */
  confirmed(asOf: number): void;
  /** The stream ended (`err`: why); the next one starts in `retryInMs`. */
  disconnected(err: Error | undefined, retryInMs: number): void;
}

export interface KeyFeedSettings {
  backoff: Backoff;
  /** A stream silent this long is taken for dead, until a heartbeat's interval says how long to wait instead (3 of them). */
  initialSilenceMs: number;
  /** The shortest silence that counts as dead, whatever the interval. */
  minSilenceMs: number;
  now: () => number;
}

const CLEAR_REASONS: Partial<Record<ResetReason, ClearReason>> = {
  [ResetReason.RESET_REASON_POSITION_EXPIRED]: 'POSITION_EXPIRED',
  [ResetReason.RESET_REASON_POSITION_UNKNOWN]: 'POSITION_UNKNOWN',
  [ResetReason.RESET_REASON_SUBSCRIBER_BEHIND]: 'SUBSCRIBER_BEHIND',
};

/**
 * Keeps one WatchKeyChanges stream open and hands its messages to the listener. A stream that
 * fails, ends or goes silent is replaced after a backoff, resuming from the position of the last
 * message processed, so the server replays what was missed (or says RESET). A stream opened
 * without a position clears the cache at its first message: nothing cached before it is covered.
 */
export class KeyFeed {
  /** The position of the last message processed; '' until the first. */
  position = '';
  private stream?: { cancel(): void };
  /** Bumped for every stream: callbacks of a replaced stream are ignored. */
  private generation = 0;
  private silenceMs: number;
  private silenceTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly open: OpenWatch,
    private readonly listener: FeedListener,
    private readonly s: KeyFeedSettings,
  ) {
    this.silenceMs = s.initialSilenceMs;
  }

  start(): void {
    this.connect();
  }

  close(): void {
    this.closed = true;
    this.generation++;
    clearTimeout(this.silenceTimer);
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  private connect(): void {
    if (this.closed) return;
    const generation = ++this.generation;
    let uncovered = this.position === '';
    this.stream = this.open(this.position, {
      message: (m) => {
        if (generation !== this.generation) return;
        if (uncovered) {
          uncovered = false;
          this.listener.cleared('NEW_STREAM');
        }
        this.apply(m);
        this.position = m.position;
        this.watchSilence(generation);
      },
      ended: (err) => {
        if (generation === this.generation) this.replace(err);
      },
    });
    this.watchSilence(generation);
  }

  private apply(m: WatchKeyChangesResponse): void {
    const event = m.event;
    switch (event?.$case) {
      case 'keyChange':
        this.listener.changed(event.value.keyHash, event.value.keyId, event.value.kind);
        return;
      case 'heartbeat': {
        const interval = durationMs(event.value.interval);
        if (interval > 0) this.silenceMs = Math.max(this.s.minSilenceMs, 3 * interval);
        this.s.backoff.reset();
        this.listener.confirmed(this.s.now() - durationMs(event.value.lag));
        return;
      }
      case 'reset':
        this.listener.cleared(CLEAR_REASONS[event.value.reason] ?? 'UNSPECIFIED');
        return;
      case undefined:
        // An event type this client does not know (a newer server): only its position counts.
        return;
    }
  }

  private replace(err: Error | undefined): void {
    const stream = this.stream;
    this.generation++;
    this.stream = undefined;
    clearTimeout(this.silenceTimer);
    stream?.cancel();
    const delay = this.s.backoff.next();
    this.listener.disconnected(err, delay);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  private watchSilence(generation: number): void {
    clearTimeout(this.silenceTimer);
    const timer = setTimeout(() => {
      // Timers run before I/O: after the process was busy, messages may be waiting unread. They
      // are read before setImmediate callbacks run, and re-arm the timer if any came.
      setImmediate(() => {
        if (generation === this.generation && this.silenceTimer === timer) {
          this.replace(new Error(`no message on WatchKeyChanges for ${this.silenceMs} ms`));
        }
      });
    }, this.silenceMs);
    timer.unref();
    this.silenceTimer = timer;
  }
}
