import { Periodic } from '../../../src/domain/background';
import type { Logger } from '../../../src/logging/logger';

const logger = () => ({ warn: jest.fn() }) as unknown as Logger & { warn: jest.Mock<void, [Record<string, unknown>, string]> };

/** A task whose runs end only when the test says so. */
function controlledTask() {
  const pending: (() => void)[] = [];
  const task = jest.fn(() => new Promise<void>((resolve) => pending.push(resolve)));
  return { task, finishRun: () => pending.shift()!() };
}

describe('Periodic', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs every period, and schedules the next run only once the last one has ended', async () => {
    const { task, finishRun } = controlledTask();
    const p = new Periodic('t', 100, task, logger());
    p.start();
    await jest.advanceTimersByTimeAsync(99);
    expect(task).toHaveBeenCalledTimes(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(task).toHaveBeenCalledTimes(1);
    // A slow run stretches the period: nothing starts while it is in progress.
    await jest.advanceTimersByTimeAsync(1_000);
    expect(task).toHaveBeenCalledTimes(1);
    finishRun();
    await jest.advanceTimersByTimeAsync(100);
    expect(task).toHaveBeenCalledTimes(2);
    finishRun();
    await p.stop({ finalRun: false });
  });

  it('stop waits for the run in progress; finalRun runs the task once more, and nothing runs after', async () => {
    const { task, finishRun } = controlledTask();
    const p = new Periodic('t', 100, task, logger());
    p.start();
    await jest.advanceTimersByTimeAsync(100);
    let stopped = false;
    const stopping = p.stop({ finalRun: true }).then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finishRun(); // the run in progress ends; the final run starts
    await jest.advanceTimersByTimeAsync(0);
    expect(task).toHaveBeenCalledTimes(2);
    expect(stopped).toBe(false);
    finishRun();
    await stopping;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(task).toHaveBeenCalledTimes(2);
  });

  it('a failing run is logged with the task name and the next one still comes', async () => {
    const log = logger();
    const task = jest.fn().mockRejectedValueOnce(new Error('boom')).mockResolvedValue(undefined);
    const p = new Periodic('usage-flush', 100, task, log);
    p.start();
    await jest.advanceTimersByTimeAsync(200);
    expect(task).toHaveBeenCalledTimes(2);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn.mock.calls[0][0]).toMatchObject({ task: 'usage-flush', err: { message: 'boom' } });
    await p.stop({ finalRun: false });
  });
});
