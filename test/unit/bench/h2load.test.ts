import { grpcFrame, parseH2loadLog, parseH2loadSummary, quantile } from '../../../bench/h2load';

// h2load 1.52's end-of-run report, as `npm run bench` reads it.
const REPORT = `finished in 5.00s, 23253.33 req/s, 931.65KB/s
requests: 116330 total, 116394 started, 116330 done, 116328 succeeded, 2 failed, 1 errored, 0 timeout
status codes: 116325 2xx, 0 3xx, 3 4xx, 0 5xx
traffic: 4.55MB (4772310) total, 579.41KB (593313) headers (space savings 95.44%), 3.94MB (4130432) data
                     min         max         mean         sd        +/- sd
time for request:      749us     20.25ms      2.72ms      1.47ms    85.55%
`;

describe("h2load's output", () => {
  it('reads the summary: duration, streams started, answered, failed and HTTP statuses other than 2xx', () => {
    expect(parseH2loadSummary(REPORT)).toEqual({ seconds: 5, started: 116394, succeeded: 116328, failed: 2, notOk: 3 });
    expect(parseH2loadSummary(REPORT.replace('5.00s', '499.61ms')).seconds).toBeCloseTo(0.49961, 6);
  });

  it('refuses output it does not recognise rather than reading zeros', () => {
    expect(() => parseH2loadSummary('connect: Connection refused\n')).toThrow(/unexpected h2load output/);
  });

  it('takes the durations of answered calls from the log file, not of failed streams', () => {
    const log = ['1795411472815485\t200\t76622', '1795411472815490\t-1\t12', '1795411472815491\t200\t80000', ''].join('\n');
    expect(parseH2loadLog(log)).toEqual([76622, 80000]);
  });
});

describe('quantile', () => {
  it('is the nearest rank, whatever the order', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });
});

describe('grpcFrame', () => {
  it('prefixes a message with the uncompressed flag and its big-endian length', () => {
    expect([...grpcFrame(Uint8Array.of(10, 1, 65))]).toEqual([0, 0, 0, 0, 3, 10, 1, 65]);
    expect([...grpcFrame(new Uint8Array(300)).subarray(0, 5)]).toEqual([0, 0, 0, 1, 44]);
  });
});
