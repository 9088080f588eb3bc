import { Periodic } from '../domain/background';
import type { Logger } from '../logging/logger';

export interface StorageHealthOptions {
  /** Resolves when MongoDB answers; rejects (within its own timeout) when it does not. */
  ping: () => Promise<void>;
  intervalMs: number;
  /** Called on every transition (and not otherwise). */
  onChange: (reachable: boolean) => void;
  logger: Logger;
}

/**
 * The one record of whether MongoDB is reachable: health follows it through onChange, metrics
 * read it when scraped. Pings every `intervalMs` on a Periodic, so a slow ping stretches the
 * period rather than piling up. Transitions are logged once each, not once per failed ping.
 */
export class StorageHealthMonitor {
  // Reachable until a ping says otherwise: the app starts only once connected.
  private reachable = true;
  private failures = 0;
  private stopped = false;
  private readonly pinger: Periodic;

  constructor(private readonly o: StorageHealthOptions) {
    this.pinger = new Periodic('storage-ping', o.intervalMs, () => this.check(), o.logger);
  }

  get isReachable(): boolean {
    return this.reachable;
  }

  /** Pings that failed since start (apikeys_storage_ping_failures_total). */
  get failedPings(): number {
    return this.failures;
  }

  start(): void {
    this.pinger.start();
  }

  /** Flags the monitor at once (a ping in flight changes nothing any more); resolves once that ping settled. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.pinger.stop({ finalRun: false });
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
    if (!ok) this.failures++;
    if (ok === this.reachable) return;
    this.reachable = ok;
    if (ok) this.o.logger.info('MongoDB reachable again: health SERVING');
    else this.o.logger.warn({ error }, 'MongoDB unreachable: health NOT_SERVING until a ping succeeds');
    this.o.onChange(ok);
  }
}
