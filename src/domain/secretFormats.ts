/**
 * Which presented secrets are keys at all: our own format (keyFormat.ts: prefix, fixed length,
 * checksum) and the foreign formats a deployment declares (FOREIGN_KEY_FORMATS) for keys imported
 * from other systems. `classifySecret` is the one decision every path that takes a secret makes
 * (VerifyKey, API-key authentication, the in-process KeyVerifier): a secret it refuses is
 * MALFORMED and never reaches storage; any other is looked up by its SHA-256, whatever its format.
 * Pure: no I/O, and only the regular expressions the deployment configured.
 */
import { hashSecret, isEnvironment, MAX_SECRET_LENGTH, parseSecret, type Environment } from './keyFormat';

/** A foreign format as configured: its name, the literal its secrets start with, a pattern over the whole secret. */
export interface ForeignKeyFormatSpec {
  name: string;
  prefix: string;
  pattern: string;
}

/** A configured foreign format, its pattern compiled and anchored. */
export interface ForeignKeyFormat extends ForeignKeyFormatSpec {
  readonly regex: RegExp;
}

/** Every format a deployment accepts: ours (KEY_PREFIX) first, then the foreign ones in their configured order. */
export interface SecretFormats {
  keyPrefix: string;
  foreign: readonly ForeignKeyFormat[];
}

/** What a well-formed secret is: its storage lookup key, and what its format tells. */
export interface ClassifiedSecret {
  /** SHA-256 hex of the secret: what keys are stored and cached by. */
  hash: string;
  /** Ours always say; a foreign one only when its pattern has an `environment` group that captured live or test. */
  environment?: Environment;
  /** null: our own format; otherwise the name of the foreign format it matched. */
  format: string | null;
}

/**
 * Longest secret a foreign pattern is ever run on: anything longer is malformed before any regular
 * expression runs, so a configured pattern that backtracks badly still costs little per input.
 */
export const MAX_FOREIGN_SECRET_LENGTH = 256;
/** Longest secret any format takes: a longer one is malformed without hashing it. */
export const MAX_ANY_SECRET_LENGTH = Math.max(MAX_SECRET_LENGTH, MAX_FOREIGN_SECRET_LENGTH);
/** Every secret that is not ours is tried against each format in turn: a few, not a catalogue. */
export const MAX_FOREIGN_FORMATS = 16;

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
// No character that means something in a regular expression, so the prefix reads the same in its pattern.
const PREFIX = /^[A-Za-z0-9_-]{1,16}$/;
const PATTERN_MAX_LENGTH = 1000;
/** What may not follow the prefix in a pattern: it would make the prefix's last character optional or repeated. */
const QUANTIFIER_START = /^[*+?{]/;

/**
 * The secret's hash and format, or null when it is in no format this deployment accepts (MALFORMED,
 * without a lookup). Our own format is tried first: a secret that is both ours and a foreign
 * format's (`sk_live_…` under both KEY_PREFIX=sk and a Stripe-style format) is looked up by the
 * same SHA-256 either way.
 */
export function classifySecret(secret: string, formats: SecretFormats): ClassifiedSecret | null {
  const format = formatOf(secret, formats);
  return format && { hash: hashSecret(secret), ...format };
}

/** classifySecret without the hash: the format `secret` is in and the environment it names, or null. */
export function formatOf(secret: string, formats: SecretFormats): Omit<ClassifiedSecret, 'hash'> | null {
  const ours = parseSecret(secret, formats.keyPrefix);
  if (ours) return { environment: ours.environment, format: null };
  for (const f of formats.foreign) {
    const match = matchForeignFormat(secret, f);
    if (match) return { environment: match.environment, format: f.name };
  }
  return null;
}

/** Whether `secret` is in format `f` (length bound, then prefix, then pattern), and the environment it names. */
export function matchForeignFormat(secret: string, f: ForeignKeyFormat): { environment?: Environment } | null {
  if (typeof secret !== 'string' || secret.length > MAX_FOREIGN_SECRET_LENGTH || !secret.startsWith(f.prefix)) return null;
  const m = f.regex.exec(secret);
  if (!m) return null;
  const environment = m.groups?.environment;
  return { environment: isEnvironment(environment) ? environment : undefined };
}

/** Whether any foreign format takes `secret` (authentication: an imported key presented as a bearer token). */
export function isForeignSecret(secret: string, foreign: readonly ForeignKeyFormat[]): boolean {
  return foreign.some((f) => matchForeignFormat(secret, f) !== null);
}

/**
 * Configured formats checked and compiled; `problems` names every mistake (empty when there is
 * none). A pattern is anchored here (`^(?:…)$`, Unicode mode) and must compile on its own first,
 * so no pattern can close the anchoring group and match more than whole secrets.
 */
export function compileForeignFormats(value: unknown): { formats: ForeignKeyFormat[]; problems: string[] } {
  if (!Array.isArray(value)) return { formats: [], problems: ['must be a JSON array of {"name", "prefix", "pattern"} objects'] };
  const problems: string[] = [];
  if (value.length > MAX_FOREIGN_FORMATS) problems.push(`at most ${MAX_FOREIGN_FORMATS} formats`);
  const formats: ForeignKeyFormat[] = [];
  const seen = new Set<string>();
  value.forEach((item: unknown, i) => {
    const at = (field: string, problem: string) => problems.push(`[${i}]${field ? `.${field}` : ''}: ${problem}`);
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      return at('', 'must be an object with "name", "prefix" and "pattern"');
    const fields = item as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((k) => !['name', 'prefix', 'pattern'].includes(k));
    if (unknown.length > 0) at('', `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
    const { name, prefix, pattern } = fields;
    let ok = unknown.length === 0;
    if (typeof name !== 'string' || !NAME.test(name)) {
      at('name', 'must be 1–32 lowercase letters, digits, "_" or "-", starting with a letter');
      ok = false;
    } else if (seen.has(name)) {
      at('name', `duplicate name "${name}"`);
      ok = false;
    } else seen.add(name);
    if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
      at('prefix', 'must be 1–16 letters, digits, "_" or "-"');
      ok = false;
    }
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > PATTERN_MAX_LENGTH) {
      at('pattern', `must be a regular expression of 1–${PATTERN_MAX_LENGTH} characters`);
      return;
    }
    let regex: RegExp;
    try {
      new RegExp(pattern, 'u');
      regex = new RegExp(`^(?:${pattern})$`, 'u');
    } catch (err) {
      at('pattern', `does not compile: ${(err as Error).message}`);
      return;
    }
    if (typeof prefix === 'string' && PREFIX.test(prefix) && !patternStartsWith(pattern, prefix)) {
      at(
        'pattern',
        `must begin with the prefix "${prefix}" written literally (the prefix is checked before the pattern, so a secret must match both)`,
      );
      ok = false;
    }
    if (ok) formats.push({ name: name as string, prefix: prefix as string, pattern, regex });
  });
  return { formats, problems };
}

/** FOREIGN_KEY_FORMATS as written in the environment: JSON, then compileForeignFormats. */
export function parseForeignFormats(json: string): { formats: ForeignKeyFormat[]; problems: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { formats: [], problems: [`not valid JSON: ${(err as Error).message}`] };
  }
  return compileForeignFormats(value);
}

/** The pattern starts with the prefix as plain characters, not with its last one made optional or repeated. */
function patternStartsWith(pattern: string, prefix: string): boolean {
  return pattern.startsWith(prefix) && !QUANTIFIER_START.test(pattern.slice(prefix.length));
}
