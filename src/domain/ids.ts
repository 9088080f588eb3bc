/**
 * Typed resource ids: `{kind}_{26 lowercase Crockford base32 chars}`, e.g. `key_01j9z…`.
 *
 * The 26 characters encode a 128-bit UUIDv7 (RFC 9562): a 48-bit Unix-millisecond timestamp in
 * the most significant bits, then version/variant bits and CSPRNG randomness. Because the
 * timestamp leads and the encoding is a fixed-width big-endian base32 whose alphabet is in ASCII
 * order, ids sort (as plain strings) by creation millisecond — handy for cursor pagination and
 * index locality. The kind prefix makes a key id impossible to confuse with an org id in logs,
 * URLs and requests.
 */
import { randomBytes } from 'node:crypto';

export type IdKind = 'key' | 'org' | 'usr' | 'evt' | 'chg' | 'rpt';

/** Crockford base32, lowercase; no i, l, o, u (easily misread). ASCII-ordered, so sorting the
 *  encoded strings sorts the underlying numbers. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const ENCODED_LENGTH = 26; // 26 × 5 = 130 bits: the 128-bit value with two leading zero bits.
const MAX_TIMESTAMP = 2 ** 48 - 1;

export const ID_PATTERNS: Readonly<Record<IdKind, RegExp>> = Object.freeze({
  key: /^key_[0-9a-hjkmnp-tv-z]{26}$/,
  org: /^org_[0-9a-hjkmnp-tv-z]{26}$/,
  usr: /^usr_[0-9a-hjkmnp-tv-z]{26}$/,
  evt: /^evt_[0-9a-hjkmnp-tv-z]{26}$/,
  chg: /^chg_[0-9a-hjkmnp-tv-z]{26}$/,
  rpt: /^rpt_[0-9a-hjkmnp-tv-z]{26}$/,
});

/** A new id of the given kind, stamped with `now` (ms since the epoch; defaults to the clock). */
export function newId(kind: IdKind, now: number = Date.now()): string {
  if (!Object.prototype.hasOwnProperty.call(ID_PATTERNS, kind)) {
    throw new TypeError(`unknown id kind: ${kind}`);
  }
  return `${kind}_${encodeBase32(uuidV7Bytes(now))}`;
}

/** True when `value` is a well-formed id of exactly this kind. */
export function isId(kind: IdKind, value: string): boolean {
  const pattern = ID_PATTERNS[kind];
  return typeof value === 'string' && pattern.test(value);
}

/** The 16 bytes of a UUIDv7 for the given millisecond. */
export function uuidV7Bytes(now: number): Buffer {
  // 48 bits hold dates until the year 10889; anything else is a caller bug, not a clock value.
  if (!Number.isInteger(now) || now < 0 || now > MAX_TIMESTAMP) {
    throw new RangeError(`timestamp out of range for a UUIDv7: ${now}`);
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6); // bytes 0–5: big-endian ms timestamp
  bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7 in the high nibble
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant (10xx)
  return bytes;
}

/** Fixed-width (26-char) big-endian base32 of 16 bytes. Fixed width + leading zero padding is
 *  what keeps string order equal to numeric order. */
export function encodeBase32(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError('expected 16 bytes');
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let out = '';
  for (let i = ENCODED_LENGTH - 1; i >= 0; i--) {
    out += ALPHABET[Number((value >> BigInt(i * 5)) & 31n)];
  }
  return out;
}
