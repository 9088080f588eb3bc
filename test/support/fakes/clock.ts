import type { Clock } from '../../../src/domain/ports';

/** A clock moved by hand. */
export class ManualClock {
  constructor(private ms: number) {}

  readonly now: Clock = () => new Date(this.ms);

  advance(ms: number): void {
    this.ms += ms;
  }
}
