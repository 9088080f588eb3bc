/**
 * ImportKeys' request, checked whole before anything is written: every entry's secret (or its
 * hash) against its format, its settings exactly as CreateKey checks them, its times and what is
 * shown of it. Every violation of every entry is reported at once, named `keys[i].field`. Pure.
 */
import { DomainError, validationError, type FieldViolation } from './errors';
import { hashSecret, type Environment, type SecretDescription } from './keyFormat';
import { matchForeignFormat, type ForeignKeyFormat } from './secretFormats';
import { validateCreateKey, validateOptionalTime, type CreateKeyInput, type ValidCreateKey } from './validation';

export const IMPORT_LIMITS = {
  keysPerCall: 100,
  startMax: 16,
  /** Characters of the secret that stay hidden between `start` and the 4 last ones a masked key shows. */
  maskedHiddenMin: 16,
} as const;

/** One key of an ImportKeys request, as the transport decoded it: CreateKey's settings, and what the other system knew. */
export interface ImportedKeyInput extends Pick<
  CreateKeyInput,
  'name' | 'scopes' | 'environment' | 'expireTime' | 'metadata' | 'workspaceId' | 'rateLimit'
> {
  /** The secret itself, or its SHA-256 in `secretSha256` (one of the two). */
  secret?: string;
  secretSha256?: string;
  format: string;
  createTime?: Date;
  lastUsedTime?: Date;
  start: string;
}

/** An entry ready to store: nothing of its secret but the hash and what is shown. */
export interface ValidImport {
  key: ValidCreateKey;
  format: string;
  shown: SecretDescription;
  /** null: now. */
  createdAt: Date | null;
  lastUsedAt: Date | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
// What a dashboard shows of a key: printable ASCII, no spaces.
const START = /^[\x21-\x7e]+$/;

/** Every entry valid, or one INVALID_ARGUMENT DomainError listing every violation. */
export function validateImport(entries: ImportedKeyInput[], formats: readonly ForeignKeyFormat[], now: Date): ValidImport[] {
  if (entries.length === 0 || entries.length > IMPORT_LIMITS.keysPerCall) {
    throw validationError([
      {
        field: 'keys',
        reason: 'INVALID_ARGUMENT',
        description: `1 to ${IMPORT_LIMITS.keysPerCall} keys per call; send the rest in another`,
      },
    ]);
  }
  const violations: FieldViolation[] = [];
  const firstIndexOf = new Map<string, number>();
  const valid: ValidImport[] = [];
  entries.forEach((entry, i) => {
    const at = `keys[${i}].`;
    const before = violations.length;
    const add = (field: string, reason: FieldViolation['reason'], description: string) =>
      violations.push({ field: at + field, reason, description });
    const format = formats.find((f) => f.name === entry.format);
    if (!format) {
      const known = formats.map((f) => f.name).join(', ') || 'none (FOREIGN_KEY_FORMATS is not set)';
      add('format', 'INVALID_KEY_FORMAT', `unknown format; this deployment's formats: ${known}`);
    }
    const secret = checkSecret(entry, format, add);
    const environment = secret.environment && entry.environment === '' ? secret.environment : entry.environment;
    if (secret.environment && environment !== secret.environment) {
      add('environment', 'INVALID_ENVIRONMENT', `the secret is a "${secret.environment}" key`);
    }
    const key = collect(violations, at, () => validateCreateKey(createInput(entry, environment), now));
    const createdAt = checkPast(entry.createTime, `${at}create_time`, now, violations);
    const lastUsedAt = checkPast(entry.lastUsedTime, `${at}last_used_time`, now, violations);
    const start = entry.start === '' ? (format?.prefix ?? '') : entry.start;
    if (entry.start !== '') checkStart(entry.start, format, entry.secret, add);
    if (secret.hash !== undefined) {
      const first = firstIndexOf.get(secret.hash);
      if (first !== undefined) add(secret.field, 'INVALID_ARGUMENT', `the same key as keys[${first}]`);
      else firstIndexOf.set(secret.hash, i);
    }
    if (violations.length > before || !format || !key || secret.hash === undefined) return;
    valid.push({
      key,
      format: format.name,
      shown: shown(secret.hash, start, entry.secret),
      createdAt: createdAt ?? null,
      lastUsedAt: lastUsedAt ?? null,
    });
  });
  if (violations.length > 0) throw validationError(violations);
  return valid;
}

type Add = (field: string, reason: FieldViolation['reason'], description: string) => void;

/** The entry's hash (hashing the secret, which goes no further), the field it came from, and the environment the secret names. */
function checkSecret(
  entry: ImportedKeyInput,
  format: ForeignKeyFormat | undefined,
  add: Add,
): { hash?: string; field: string; environment?: Environment } {
  if (entry.secret !== undefined && entry.secret !== '') {
    const match = format && matchForeignFormat(entry.secret, format);
    // Never quoted: the description names the format, not the input.
    if (format && !match) add('secret', 'INVALID_KEY_FORMAT', `does not match the pattern of format "${format.name}"`);
    return { hash: hashSecret(entry.secret), field: 'secret', environment: match ? match.environment : undefined };
  }
  if (entry.secretSha256 !== undefined && entry.secretSha256 !== '') {
    if (!SHA256_HEX.test(entry.secretSha256)) {
      add('secret_sha256', 'INVALID_ARGUMENT', 'must be the SHA-256 of the secret, 64 lowercase hex characters');
      return { field: 'secret_sha256' };
    }
    return { hash: entry.secretSha256, field: 'secret_sha256' };
  }
  add('secret', 'INVALID_ARGUMENT', 'secret or secret_sha256 is required');
  return { field: 'secret' };
}

/** The settings CreateKey takes; an imported key cannot revoke itself nor be read back. */
function createInput(entry: ImportedKeyInput, environment: string): CreateKeyInput {
  return {
    name: entry.name,
    scopes: entry.scopes,
    environment,
    expireTime: entry.expireTime,
    metadata: entry.metadata,
    workspaceId: entry.workspaceId,
    allowSelfRevoke: false,
    recoverable: false,
    requestId: '',
    rateLimit: entry.rateLimit,
  };
}

/** A time of the past (or now), in the Timestamp range; undefined when not given or invalid. */
function checkPast(t: Date | undefined, field: string, now: Date, violations: FieldViolation[]): Date | undefined {
  if (!t || !collect(violations, '', () => validateOptionalTime(t, field))) return undefined;
  if (t.getTime() > now.getTime()) {
    violations.push({ field, reason: 'INVALID_TIMESTAMP', description: `${field} must not be in the future` });
    return undefined;
  }
  return t;
}

function checkStart(start: string, format: ForeignKeyFormat | undefined, secret: string | undefined, add: Add): void {
  if (start.length > IMPORT_LIMITS.startMax || !START.test(start)) {
    add('start', 'INVALID_ARGUMENT', `must be 1–${IMPORT_LIMITS.startMax} printable ASCII characters`);
  } else if (format && !start.startsWith(format.prefix)) {
    add('start', 'INVALID_ARGUMENT', `must begin with the format's prefix "${format.prefix}"`);
  } else if (secret && !secret.startsWith(start)) {
    add('start', 'INVALID_ARGUMENT', 'must be the first characters of the secret');
  }
}

/**
 * What is shown of an imported key: `start`, and a masked key that adds the secret's last 4
 * characters when the secret was given and enough of it stays hidden between the two.
 */
function shown(hash: string, start: string, secret: string | undefined): SecretDescription {
  const hidden = secret ? secret.length - start.length - 4 : 0;
  const tail = secret && hidden >= IMPORT_LIMITS.maskedHiddenMin ? secret.slice(-4) : '';
  return { hash, start, maskedKey: `${start}…${tail}`, fingerprint: hash.slice(0, 6) };
}

/** `fn`'s result, or undefined with its field violations added (prefixed by `at`). */
function collect<T>(violations: FieldViolation[], at: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof DomainError) || err.fieldViolations.length === 0) throw err;
    violations.push(...err.fieldViolations.map((v) => ({ ...v, field: at + v.field })));
    return undefined;
  }
}
