import { keyState } from './keyState';
import { hashSecret, parseSecret } from './keyFormat';
import type { KeyDocument } from '../storage/documents';

export type VerifyCodeName =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'REVOKED'
  | 'ARCHIVED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE';

export interface VerifyResult {
  code: VerifyCodeName;
  /** Present whenever the key was found, valid or not. */
  key?: KeyDocument;
}

export interface VerifierDeps {
  keyPrefix: string;
  findByHash: (hash: string) => Promise<KeyDocument | null>;
  now: () => Date;
}

/**
 * Decides whether a presented secret is good. Checks run in the documented order and the first
 * failure is reported: MALFORMED → NOT_FOUND → REVOKED → ARCHIVED → EXPIRED → INSUFFICIENT_SCOPE.
 * Garbage never reaches storage: the format and checksum are checked first.
 */
export class Verifier {
  constructor(private readonly d: VerifierDeps) {}

  async verify(secret: string, requiredScopes: readonly string[]): Promise<VerifyResult> {
    if (!parseSecret(secret, this.d.keyPrefix)) return { code: 'MALFORMED' };
    const key = await this.d.findByHash(hashSecret(secret));
    if (!key) return { code: 'NOT_FOUND' };
    const state = keyState(key, this.d.now());
    if (state !== 'ACTIVE') return { code: state, key };
    if (!requiredScopes.every((s) => key.scopes.includes(s))) return { code: 'INSUFFICIENT_SCOPE', key };
    return { code: 'VALID', key };
  }
}
