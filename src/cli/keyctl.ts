#!/usr/bin/env node
/**
 * keyctl — the apikeys command line for backoffice operators, over the generated gRPC client.
 *
 *   keyctl [--addr host:port] [--token T] [--json] <command> [arguments]
 *
 * Exit codes: 0 done, 2 usage error (nothing was sent), 3 the server refused or failed the call
 * (authentication, permission, validation, not found, …), 4 the server could not be reached.
 *
 * This file parses the command line and runs one command; the commands are in ./commands, what
 * they print in ./output, the service connection in ./connection, error reports in ./failure.
 */
import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { EXIT, UsageError, type Io, type Options, type Values } from './command';
import { COMMANDS, commandAt } from './commands';
import { Connection } from './connection';
import { describeFailure, isServiceError } from './failure';
import { commandHelp, help } from './help';
import { printError } from './output';
import { parseDuration } from './parse';

const GLOBAL: Options = {
  addr: { type: 'string' },
  token: { type: 'string' },
  org: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export async function keyctl(argv: string[], io: Io): Promise<number> {
  const allOptions: Options = { ...GLOBAL };
  for (const c of Object.values(COMMANDS)) Object.assign(allOptions, c.options);
  // First pass, lenient: find the command wherever the global flags are.
  const first = parseArgs({ args: argv, options: allOptions, strict: false, allowPositionals: true });
  const [name, ...rest] = first.positionals;
  const jsonMode = first.values.json === true;
  const fail = (message: string, exit: number, hint?: string, json?: Record<string, unknown>) => {
    printError(io, jsonMode, message, hint, json);
    return exit;
  };

  if (!name || name === 'help') {
    const topic = commandAt(rest);
    if (topic) io.out(commandHelp(topic.name));
    else if (rest[0]) return fail(`unknown command "${rest[0]}"`, EXIT.USAGE, "run 'keyctl help' for the list");
    else if (!name && !first.values.help) {
      io.err(help());
      return EXIT.USAGE;
    } else io.out(help());
    return EXIT.OK;
  }
  const found = commandAt(first.positionals);
  if (!found) return fail(`unknown command "${name}"`, EXIT.USAGE, "run 'keyctl help' for the list");
  const command = found.command;

  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...command.options }, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs' messages go on about positionals after '--'; the first sentence is the point.
    return fail((err as Error).message.split(/\. To specify|\n/)[0], EXIT.USAGE, `usage: keyctl ${command.usage}`);
  }
  const values = parsed.values as Values;
  if (values.help) {
    io.out(commandHelp(found.name));
    return EXIT.OK;
  }
  const args = parsed.positionals.slice(found.words);
  const addr = (values.addr as string | undefined) ?? io.env.APIKEYS_ADDR ?? 'localhost:50051';
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration((values.timeout as string | undefined) ?? '10s', 'timeout') * 1000;
  } catch (err) {
    return fail((err as Error).message, EXIT.USAGE);
  }

  const wanted = command.args;
  if (wanted && args.length !== wanted.length) {
    const problem = args.length < wanted.length ? `missing ${wanted[args.length]}` : `unexpected argument "${args[wanted.length]}"`;
    return fail(`${found.name}: ${problem}`, EXIT.USAGE, `usage: keyctl ${command.usage}`);
  }
  const token = (values.token as string | undefined) ?? io.env.APIKEYS_TOKEN;
  if (command.needsToken && !token) {
    return fail(
      'no credential: pass --token or set APIKEYS_TOKEN',
      EXIT.USAGE,
      'use a user JWT from your identity provider, or an API key with the needed scopes',
    );
  }
  const org = (values.org as string | undefined) ?? io.env.APIKEYS_ORG;

  const conn = new Connection(addr, timeoutMs, token, org);
  try {
    return (await command.run({ conn, values, args, json: jsonMode, io })) ?? EXIT.OK;
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, EXIT.USAGE, `usage: keyctl ${command.usage}`);
    if (isServiceError(err)) {
      const f = describeFailure(err, addr, timeoutMs);
      return fail(f.message, f.exit, f.hint, f.json);
    }
    throw err;
  } finally {
    conn.close();
  }
}

if (require.main === module) {
  keyctl(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
    input: process.stdin.isTTY ? undefined : () => text(process.stdin),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`keyctl: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
