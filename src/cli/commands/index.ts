import type { Command } from '../command';
import { audit } from './audit';
import { health } from './health';
import { create, get, list, secret, update } from './keys';
import { archive, reactivate, remove, revoke, rotate } from './lifecycle';
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
  audit,
  usage,
  health,
};

/** The command called `name`, if there is one: own names only, so `toString` or `constructor` is not a command. */
export function commandNamed(name: string): Command | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}
