// Command-line mistakes keyctl answers before it connects to anything: no server here.
import { EXIT, type Io } from '../../../src/cli/command';
import { keyctl } from '../../../src/cli/keyctl';

async function run(args: string[], over: Partial<Io> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env: {}, ...over };
  const code = await keyctl(args, io);
  return { code, out, err };
}

describe('keyctl command names', () => {
  // Names every plain object has: they must not be taken for commands.
  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])('"%s" is an unknown command, a usage error', async (name) => {
    const r = await run([name]);
    expect(r).toEqual({ code: EXIT.USAGE, out: '', err: `keyctl: unknown command "${name}"\nrun 'keyctl help' for the list\n` });
  });

  it.each(['constructor', 'toString'])('"help %s" is an unknown command, a usage error', async (name) => {
    const r = await run(['help', name]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toContain(`unknown command "${name}"`);
  });

  it('still shows the help of a real command', async () => {
    const r = await run(['help', 'revoke']);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(/^usage: keyctl \[global flags\] revoke KEY_ID/);
  });
});

describe('keyctl commands of two words', () => {
  it.each([
    ['org', 'get'],
    ['keys', 'report-leaked'],
  ])('"help %s %s" shows its usage', async (group, name) => {
    const r = await run(['help', group, name]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(new RegExp(`^usage: keyctl \\[global flags\\] ${group} ${name}\\b`));
  });

  it('a group alone is an unknown command', async () => {
    expect(await run(['org'])).toMatchObject({ code: EXIT.USAGE, err: expect.stringContaining('unknown command "org"') });
  });

  // A wrong command line is answered before anything is sent: the address is never dialled.
  const withToken = { env: { APIKEYS_TOKEN: 't', APIKEYS_ADDR: '127.0.0.1:1' } };

  it('reads secrets only when they are piped in: from a terminal it refuses', async () => {
    const r = await run(['keys', 'lookup'], withToken);
    expect(r).toMatchObject({ code: EXIT.USAGE, err: expect.stringContaining('pipe them in') });
  });

  it.each([
    [['keys', 'report-leaked'], 'x', 'needs --reporter'],
    [['keys', 'report-leaked', '--reporter', 'r'], 'sk_a\n'.repeat(101), 'at most 100 secrets'],
    [['keys', 'lookup'], 'sk_a\nsk_b\n', 'takes one secret'],
    [['org', 'set-limit', '0'], '', 'positive integer'],
    [['org', 'set-limit'], '', 'missing N'],
  ])('%j is a usage error', async (args, input, message) => {
    const r = await run(args, { ...withToken, input: async () => input });
    expect(r).toMatchObject({ code: EXIT.USAGE, out: '', err: expect.stringContaining(message) });
  });
});
