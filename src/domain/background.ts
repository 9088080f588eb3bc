import type { Logger } from '../logging/logger';

/**
 * A periodic task that never overlaps itself and never keeps the process alive; stop() waits
 * for a run in progress and then runs the task once more (the final flush on shutdown).
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly everyMs: number,
    private readonly task: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.schedule();
  }

  async stop(options: { finalRun: boolean }): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (options.finalRun) await this.runOnce();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().then(() => this.schedule());
    }, this.everyMs);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    try {
      await this.task();
    } catch (err) {
      this.logger.warn(
        { task: this.name, err: { name: (err as Error).name, message: (err as Error).message } },
        'background task failed; will retry',
      );
    }
  }
}
