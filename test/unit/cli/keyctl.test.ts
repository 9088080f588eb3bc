// Command-line mistakes keyctl answers before it connects to anything: no server here.
import { EXIT, type Io } from '../../../src/cli/command';
import { keyctl } from '../../../src/cli/keyctl';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env: {} };
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
