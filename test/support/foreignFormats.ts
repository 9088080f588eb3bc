// The foreign key formats docs/configuration.md shows, and secrets in each: what tests configure
// FOREIGN_KEY_FORMATS with and import.
import { randomInt } from 'node:crypto';
import type { ForeignKeyFormatSpec } from '../../src/domain/secretFormats';

export const FORMATS = {
  /** Unkey-style: prefix_env_ and a base58 body. */
  ffy: { name: 'ffy', prefix: 'ffy_', pattern: 'ffy_(?<environment>live|test)_[1-9A-HJ-NP-Za-km-z]{20,44}' },
  /** fnp_ and 32 lowercase hex characters. */
  fnp: { name: 'fnp', prefix: 'fnp_', pattern: 'fnp_[0-9a-f]{32}' },
  /** Stripe-style secret keys: 24–99 base62 characters after sk_live_ / sk_test_. */
  stripe: { name: 'stripe', prefix: 'sk_', pattern: 'sk_(?<environment>live|test)_[0-9A-Za-z]{24,99}' },
} as const satisfies Record<string, ForeignKeyFormatSpec>;

export type FormatName = keyof typeof FORMATS;

/** FOREIGN_KEY_FORMATS with all three. */
export const FOREIGN_KEY_FORMATS = JSON.stringify(Object.values(FORMATS));

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const HEX = '0123456789abcdef';
const random = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('');

/** A fresh secret in `format` (a live one where the format names environments). */
export function foreignSecret(format: FormatName, environment: 'live' | 'test' = 'live'): string {
  switch (format) {
    case 'ffy':
      return `ffy_${environment}_${random(BASE58, 32)}`;
    case 'fnp':
      return `fnp_${random(HEX, 32)}`;
    case 'stripe':
      // 40, not 38: never our own format's length, so never taken for one of ours.
      return `sk_${environment}_${random(BASE62, 40)}`;
  }
}
