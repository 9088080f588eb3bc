import type { Logger } from '../logging/logger';

export interface StorageHealthOptions {
  /** Resolves when MongoDB answers; rejects (within its own timeout) when it does not. */
  ping: () => Promise<void>;
  intervalMs: number;
  /** Called on every transition (and not otherwise). */
  onChange: (reachable: boolean) => void;
  /** Called after every ping, for metrics. */
  onPing?: (reachable: boolean) => void;
  logger: Logger;
}

/**
 * Pings MongoDB every `intervalMs` (never overlapping: the next ping is scheduled when the last
 * one settles, so a slow ping stretches the period rather than piling up). Reports transitions
 * only, and logs them once each, not once per failed ping.
 */
export class StorageHealthMonitor {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private current: Promise<void> = Promise.resolve();
  private reachable = true;

  constructor(private readonly o: StorageHealthOptions) {}

  get isReachable(): boolean {
    return this.reachable;
  }

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.check().then(() => this.schedule());
    }, this.o.intervalMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    let ok: boolean;
    let error: string | undefined;
    try {
      await this.o.ping();
      ok = true;
    } catch (err) {
      ok = false;
      error = `${(err as Error).name}: ${(err as Error).message}`;
    }
    if (this.stopped) return; // shutdown owns the health status now
    this.o.onPing?.(ok);
    if (ok === this.reachable) return;
    this.reachable = ok;
    if (ok) this.o.logger.info('MongoDB reachable again: health SERVING');
    else this.o.logger.warn({ error }, 'MongoDB unreachable: health NOT_SERVING until a ping succeeds');
    this.o.onChange(ok);
  }
}
