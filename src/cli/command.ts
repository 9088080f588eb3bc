import type { ParseArgsConfig } from 'node:util';
import type { Connection } from './connection';

/** Exit codes: 0 done, 2 usage error (nothing was sent), 3 refused or failed by the server, 4 not reachable. */
export const EXIT = { OK: 0, USAGE: 2, SERVER: 3, UNREACHABLE: 4 } as const;

/** Where a run writes and what environment it reads (the process's, or a test's). */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /**
   * All of standard input; absent when it is a terminal. Secrets come in this way, piped: never
   * as arguments (shell history, the process list) nor typed where the terminal echoes them.
   */
  input?: () => Promise<string>;
}

/** A mistake in the command line: reported with the command's usage, exit 2. */
export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Ctx {
  conn: Connection;
  values: Values;
  args: string[];
  json: boolean;
  io: Io;
}

export interface Command {
  summary: string;
  usage: string;
  options: Options;
  /** Positional arguments after the command name: their names, all required. Absent: the command reads what it is given itself. */
  args?: string[];
  needsToken: boolean;
  /** Resolves to the exit code; undefined is EXIT.OK. */
  run(c: Ctx): Promise<number | undefined>;
}
