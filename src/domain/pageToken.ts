/**
 * AIP-158 page tokens: opaque to clients, tamper-proof, and bound to the request they came from.
 *
 * Token = base64url( MAC[16] ‖ JSON{"t":…,"id":…} ). The MAC is HMAC-SHA256 (truncated to 128
 * bits) over a domain tag, the caller's `scope` and the payload. `scope` is derived by the
 * caller from the org and the list filters, so a token replayed against another org or with
 * other filters fails verification instead of silently resuming a different listing. The
 * payload is not encrypted: it holds only a sort position, which is not secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Sort position of the last item on a page: created time (ms) and document id. */
export interface PagePosition {
  t: number;
  id: string;
}

export const MAX_PAGE_TOKEN_LENGTH = 512;
const MAC_LENGTH = 16;
const MIN_KEY_LENGTH = 16;
const DOMAIN_TAG = 'apikeys.pageToken.v1\0'; // separates these MACs from any other use of the key
// Conservative id charset/length: keeps every encodable token far below MAX_PAGE_TOKEN_LENGTH
// (worst case ≈ 240 chars), so encode never produces a token decode would reject.
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Whether `value` is a position encodePageToken accepts (and decodePageToken can return). */
export function isPagePosition(value: unknown): value is PagePosition {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { t, id } = value as Record<string, unknown>;
  return Number.isSafeInteger(t) && (t as number) >= 0 && typeof id === 'string' && ID_PATTERN.test(id);
}

export function encodePageToken(position: PagePosition, scope: string, key: Buffer): string {
  checkKey(key);
  if (!isPagePosition(position)) throw new RangeError('invalid page position');
  // Explicit field list: no extra properties of `position` leak into the token.
  const payload = Buffer.from(JSON.stringify({ t: position.t, id: position.id }), 'utf8');
  return Buffer.concat([mac(payload, scope, key), payload]).toString('base64url');
}

/** The position inside `token`, or null unless encodePageToken produced it with this scope and key. */
export function decodePageToken(token: string, scope: string, key: Buffer): PagePosition | null {
  checkKey(key);
  if (typeof token !== 'string' || typeof scope !== 'string') return null;
  if (token.length === 0 || token.length > MAX_PAGE_TOKEN_LENGTH) return null;
  // Node's base64url decoder silently skips invalid characters and ignores trailing bits, so
  // check the alphabet and require the canonical encoding: otherwise several distinct strings
  // (e.g. a flipped last character) would decode to the same, validly MAC'd bytes.
  if (!BASE64URL_PATTERN.test(token)) return null;
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.toString('base64url') !== token || bytes.length <= MAC_LENGTH) return null;

  const presented = bytes.subarray(0, MAC_LENGTH);
  const payload = bytes.subarray(MAC_LENGTH);
  if (!timingSafeEqual(presented, mac(payload, scope, key))) return null;

  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  // Defence in depth: the MAC already proves we wrote it, but never trust shape blindly.
  if (!isPagePosition(parsed)) return null;
  return { t: parsed.t, id: parsed.id };
}

/** Truncated HMAC over tag ‖ len(scope) ‖ scope ‖ payload; the length prefix keeps the
 *  scope/payload boundary unambiguous. */
function mac(payload: Buffer, scope: string, key: Buffer): Buffer {
  const scopeBytes = Buffer.from(scope, 'utf8');
  const scopeLength = Buffer.alloc(4);
  scopeLength.writeUInt32BE(scopeBytes.length);
  return createHmac('sha256', key)
    .update(DOMAIN_TAG)
    .update(scopeLength)
    .update(scopeBytes)
    .update(payload)
    .digest()
    .subarray(0, MAC_LENGTH);
}

/** A short or empty key is a configuration bug; fail loudly rather than mint forgeable tokens. */
function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length < MIN_KEY_LENGTH) {
    throw new RangeError(`page token key must be a Buffer of at least ${MIN_KEY_LENGTH} bytes`);
  }
}
