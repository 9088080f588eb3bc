import { ConfigError, loadConfig } from '../../../src/config/config';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

/** How long what accumulates is kept, and how often the sweep runs. */
describe('retention configuration', () => {
  it('defaults: usage and audit 400 days, the change log an hour, a sweep a minute', () => {
    expect(loadConfig({}).retention).toEqual({ usageDays: 400, auditDays: 400, keyChangeSeconds: 3600, sweepIntervalMs: 60_000 });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      USAGE_RETENTION_DAYS: '30',
      AUDIT_RETENTION_DAYS: '90',
      KEY_CHANGE_RETENTION_SECONDS: '120',
      RETENTION_SWEEP_INTERVAL_MS: '300000',
    });
    expect(c.retention).toEqual({ usageDays: 30, auditDays: 90, keyChangeSeconds: 120, sweepIntervalMs: 300_000 });
  });

  it('refuses an audit log kept under 90 days, a change log under a minute, and a sweep rarer than every 5 minutes', () => {
    expect(
      problems({
        AUDIT_RETENTION_DAYS: '89',
        KEY_CHANGE_RETENTION_SECONDS: '59',
        RETENTION_SWEEP_INTERVAL_MS: '300001',
        USAGE_RETENTION_DAYS: '0',
      }),
    ).toEqual([
      expect.stringMatching(/^USAGE_RETENTION_DAYS: /),
      'AUDIT_RETENTION_DAYS: must be at least 90 (days)',
      'KEY_CHANGE_RETENTION_SECONDS: must be at least 60 (seconds)',
      'RETENTION_SWEEP_INTERVAL_MS: must be at most 300000 (5 minutes)',
    ]);
  });
});
