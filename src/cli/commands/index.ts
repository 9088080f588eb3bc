import type { Command } from '../command';
import { audit } from './audit';
import { health } from './health';
import { importKeys } from './importKeys';
import { create, get, list, secret, update } from './keys';
import { leakReport, lookup } from './leaks';
import { archive, reactivate, remove, revoke, rotate } from './lifecycle';
import { orgGet, orgSetLimit } from './organization';
import { usage } from './usage';

/** Every command by its name, in the order `keyctl help` lists them. */
export const COMMANDS: Record<string, Command> = {
  create,
  list,
  get,
  update,
  revoke,
  archive,
  reactivate,
  delete: remove,
  rotate,
  secret,
  import: importKeys,
  audit,
  'org get': orgGet,
  'org set-limit': orgSetLimit,
  'keys lookup': lookup,
  'keys report-leaked': leakReport,
  usage,
  health,
};

/**
 * The command the positionals start with — one word, or two for a grouped one (`org get`) — and
 * how many words its name took. Own names only, so `toString` or `constructor` is not a command.
 */
export function commandAt(positionals: string[]): { name: string; words: number; command: Command } | undefined {
  for (const words of [2, 1]) {
    const name = positionals.slice(0, words).join(' ');
    if (positionals.length >= words && Object.hasOwn(COMMANDS, name)) return { name, words, command: COMMANDS[name] };
  }
  return undefined;
}
