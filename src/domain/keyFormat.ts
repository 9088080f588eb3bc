/**
 * The API-key secret: `{prefix}_{env}_{random}{checksum}`, e.g. `sk_live_<32 base62><6 base62>`.
 *
 * - prefix: per deployment, so secret scanners can recognise our keys;
 * - env: `live` | `test`, visible so a test key is never mistaken for a live one;
 * - random: 32 base62 chars from a CSPRNG (32 × log2(62) ≈ 190 bits);
 * - checksum: CRC32 of everything before it, as 6 base62 chars (GitHub-token style), so typos
 *   and garbage are rejected by `parseSecret` without a storage lookup.
 *
 * Only `hashSecret(secret)` is stored: SHA-256 is enough for a 190-bit random secret (a slow
 * password hash protects low-entropy inputs, which these are not).
 */
import { hash, randomBytes } from 'node:crypto';

export type Environment = 'live' | 'test';

export interface ParsedSecret {
  readonly environment: Environment;
}

export interface SecretDescription {
  /** SHA-256 hex of the secret: the storage lookup key. */
  hash: string;
  /** `{prefix}_{env}_` + first 4 random chars, e.g. `sk_live_abc1`. */
  start: string;
  /** `start` + '…' + last 4 chars of the secret, e.g. `sk_live_abc1…wxyz`. */
  maskedKey: string;
  /** First 6 hex chars of the SHA-256. */
  fingerprint: string;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const RANDOM_LENGTH = 32;
export const CHECKSUM_LENGTH = 6; // 62^6 ≈ 5.7e10 > 2^32, so any CRC32 fits.
const ENV_LENGTH = 4; // 'live' and 'test' are both 4 chars, so the total length is fixed.
/** Everything but the prefix: `_` + env + `_` + random + checksum. */
const SUFFIX_LENGTH = 1 + ENV_LENGTH + 1 + RANDOM_LENGTH + CHECKSUM_LENGTH;
/** Longest possible secret (16-char prefix): 60. Anything longer is rejected before any other check. */
export const MAX_SECRET_LENGTH = 16 + SUFFIX_LENGTH;

const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}$/;
// Prefixes cannot contain '_', so the first '_' always ends the prefix.
const SECRET_SHAPE = /^([a-z][a-z0-9]{1,15})_(live|test)_([0-9A-Za-z]{38})$/;
const UNDERSCORE = 0x5f;
/** Base62 digit value by char code (< 128), -1 for any other char. */
const BASE62_DIGITS = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE62.length; i++) BASE62_DIGITS[BASE62.charCodeAt(i)] = i;
/** CRC-32 (IEEE, zlib's) byte table. */
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}
// Shared and frozen: parseSecret runs on every verification and allocates nothing.
const PARSED_LIVE: ParsedSecret = Object.freeze({ environment: 'live' });
const PARSED_TEST: ParsedSecret = Object.freeze({ environment: 'test' });

/** What isValidPrefix takes, in words (for the errors of whatever is given a prefix). */
export const PREFIX_RULE = '2–16 lowercase letters or digits, starting with a letter';

/** A deployment's key prefix: a lowercase letter, then 1–15 lowercase letters or digits. */
export function isValidPrefix(prefix: string): boolean {
  return typeof prefix === 'string' && PREFIX_PATTERN.test(prefix);
}

export function isEnvironment(value: unknown): value is Environment {
  return value === 'live' || value === 'test';
}

/** A fresh secret. Throws on an invalid prefix or environment (configuration/programming bugs). */
export function generateSecret(prefix: string, environment: Environment): string {
  if (!isValidPrefix(prefix)) throw new RangeError(`invalid key prefix: ${JSON.stringify(prefix)}`);
  if (!isEnvironment(environment)) throw new RangeError(`invalid environment: ${String(environment)}`);
  const body = `${prefix}_${environment}_${randomBase62(RANDOM_LENGTH)}`;
  return body + checksumOf(body);
}

/**
 * Checks a presented secret's shape, prefix and checksum; null when any of them is wrong.
 * Cheap on purpose (length first, no I/O): it runs on every verification, before storage.
 */
export function parseSecret(secret: string, prefix: string): ParsedSecret | null {
  if (typeof secret !== 'string' || typeof prefix !== 'string') return null;
  const length = secret.length;
  if (length > MAX_SECRET_LENGTH || length !== prefix.length + SUFFIX_LENGTH) return null;
  if (!secret.startsWith(prefix) || secret.charCodeAt(prefix.length) !== UNDERSCORE) return null;
  const envStart = prefix.length + 1;
  const parsed = secret.startsWith('live', envStart) ? PARSED_LIVE : secret.startsWith('test', envStart) ? PARSED_TEST : null;
  if (parsed === null || secret.charCodeAt(envStart + ENV_LENGTH) !== UNDERSCORE) return null;
  const randomStart = envStart + ENV_LENGTH + 1;
  const checksumStart = length - CHECKSUM_LENGTH;
  // The random part is validated and CRC'd in one pass: each char is read once.
  let crc = crcRegister(secret, randomStart);
  for (let i = randomStart; i < checksumStart; i++) {
    const code = secret.charCodeAt(i);
    if (base62Digit(code) < 0) return null;
    crc = crcStep(crc, code);
  }
  // Decoded as a number (62^6 > 2^32, exact in a double) rather than re-encoding the CRC.
  let checksum = 0;
  for (let i = checksumStart; i < length; i++) {
    const digit = base62Digit(secret.charCodeAt(i));
    if (digit < 0) return null;
    checksum = checksum * 62 + digit;
  }
  // Not a secret comparison (the checksum is public information), so === is fine here.
  return checksum === ~crc >>> 0 ? parsed : null;
}

/** SHA-256 hex of the secret: what storage indexes and looks keys up by. */
export function hashSecret(secret: string): string {
  // One-shot hash: about 2.5× faster than createHash() here, and Verify calls this every time.
  return hash('sha256', secret, 'hex');
}

/**
 * The non-secret fields stored and shown for a key. Throws if `secret` is not shaped like a
 * secret: describing arbitrary input would put unmasked text where a mask is expected.
 */
export function describeSecret(secret: string): SecretDescription {
  const match = typeof secret === 'string' ? SECRET_SHAPE.exec(secret) : null;
  if (!match) throw new TypeError('not a well-formed secret');
  const hash = hashSecret(secret);
  const start = `${match[1]}_${match[2]}_${match[3].slice(0, 4)}`;
  return {
    hash,
    start,
    maskedKey: `${start}…${secret.slice(-4)}`,
    fingerprint: hash.slice(0, 6),
  };
}

/** The 6-char base62 CRC32 of `body`, left-padded with '0'. */
export function checksumOf(body: string): string {
  let value = crc32Of(body, body.length);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/**
 * zlib's CRC32 of the UTF-8 bytes of `text`'s first `end` chars, as an unsigned 32-bit number.
 * Pure JS on purpose: no native call converting the string, no allocation for ASCII text.
 */
export function crc32Of(text: string, end: number): number {
  return ~crcRegister(text, end) >>> 0;
}

/** The CRC32 register (before the final inversion) after `text`'s first `end` chars. */
function crcRegister(text: string, end: number): number {
  let crc = -1;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) {
      // Only from a prefix outside the allowed charset (parseSecret does not check it): hash the
      // rest as UTF-8 bytes, as zlib does, so such a prefix behaves as it always has.
      for (const byte of Buffer.from(text.slice(i, end))) crc = crcStep(crc, byte);
      break;
    }
    crc = crcStep(crc, code);
  }
  return crc;
}

function crcStep(crc: number, byte: number): number {
  return CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
}

function base62Digit(code: number): number {
  return code < 128 ? BASE62_DIGITS[code] : -1;
}

/** `length` uniform base62 chars from the CSPRNG. Bytes ≥ 248 (= 4 × 62) are discarded so that
 *  `byte % 62` is uniform — plain modulo would favour the first 8 characters. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length + 8)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}
