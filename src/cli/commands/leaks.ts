import { LookupKeyResponse, ReportLeakedKeysResponse } from '../../gen/apikeys/v1/key_service';
import { UsageError, type Ctx, type Command } from '../command';
import { answeredKey, asJson, keyDetails, leakTable } from '../output';
import { stringFlag } from '../parse';

// Secrets found where they must not be. They are read from standard input only, and never printed.

const REPORT_MAX = 100;

/** The secrets piped in, one per line (blank lines skipped). */
async function secretsFromInput(c: Ctx, command: string): Promise<string[]> {
  if (!c.io.input) throw new UsageError(`${command} reads secrets from standard input: pipe them in (a secret typed here would be echoed)`);
  const secrets = (await c.io.input())
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (secrets.length === 0) throw new UsageError(`${command}: no secret on standard input`);
  return secrets;
}

export const lookup: Command = {
  summary: 'which key a secret is, and its state (staff, services); the secret is read from stdin',
  usage: 'keys lookup < FILE   (or: … | keyctl keys lookup; one secret)',
  options: {},
  args: [],
  needsToken: true,
  async run(c) {
    const secrets = await secretsFromInput(c, 'keys lookup');
    if (secrets.length > 1) throw new UsageError('keys lookup takes one secret; use keys report-leaked for several');
    const res = await c.conn.keys.lookupKey({ secret: secrets[0] }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(LookupKeyResponse.toJSON(res)) : keyDetails(answeredKey(res.key)));
  },
};

export const leakReport: Command = {
  summary: 'revoke the keys of leaked secrets, read from stdin one per line (staff admins, services)',
  usage: `keys report-leaked --reporter NAME [--location URL] < FILE   (at most ${REPORT_MAX} secrets)`,
  options: { reporter: { type: 'string' }, location: { type: 'string' } },
  args: [],
  needsToken: true,
  async run(c) {
    const reporter = stringFlag(c.values, 'reporter');
    if (!reporter) throw new UsageError('keys report-leaked needs --reporter, e.g. --reporter github-secret-scanning');
    const secrets = await secretsFromInput(c, 'keys report-leaked');
    if (secrets.length > REPORT_MAX) {
      throw new UsageError(
        `at most ${REPORT_MAX} secrets per report (got ${secrets.length}); split the input, e.g. with split -l ${REPORT_MAX}`,
      );
    }
    const location = stringFlag(c.values, 'location');
    const res = await c.conn.keys.reportLeakedKeys(
      { reporter, secrets: secrets.map((secret) => ({ secret, location })) },
      c.conn.md(),
      c.conn.opts,
    );
    c.io.out(c.json ? asJson(ReportLeakedKeysResponse.toJSON(res)) : leakTable(res.results) + `report ${res.reportId}\n`);
  },
};
