// A real Authenticator that knows three service tokens; every other credential is refused.
import { randomBytes } from 'node:crypto';
import { Authenticator } from '../../../../src/domain/authentication';
import type { Verifier } from '../../../../src/domain/verification';
import { headers } from './harness';

const tokens = Array.from({ length: 3 }, () => randomBytes(24).toString('base64url'));
const verifier = { verify: async () => ({ code: 'NOT_FOUND' }) } as unknown as Verifier;
export const authenticator = new Authenticator(
  { keyPrefix: 'sk', jwtMaxAgeSeconds: 86_400, verifyTokens: tokens, staffEmailDomains: [] },
  verifier,
);

/** Metadata of service N (1-based), with more headers. */
export const service = (n: number, more: Record<string, string> = {}) => headers({ authorization: `Bearer ${tokens[n - 1]}`, ...more });

/** The service tokens, to check none is ever logged. */
export const secrets = tokens;
