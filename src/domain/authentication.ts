import { hash, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config/config';
import { DomainError } from './errors';
import { isId } from './ids';
import { parseSecret } from './keyFormat';
import type { AuthFailureLimiter } from './authFailureLimiter';
import type { UserTokenKeys } from './ports';
import type { Principal, UserPrincipal } from './principal';
import { isForeignSecret, type ForeignKeyFormat } from './secretFormats';
import type { Verifier } from './verification';

/** What the interceptor extracted from metadata; everything else is ignored. */
export interface Credentials {
  authorization: string[];
  apiKey: string[];
  organizationId: string[];
  /** The caller's address (host only): failed API-key authentications are limited per peer. */
  peer?: string;
}

export interface Authenticated {
  principal: Principal;
  orgId: string;
  actingAs: boolean;
}

/**
 * The auth part of the configuration, the key prefix (and imported keys' formats) to recognise
 * API keys by, and the keys user tokens are checked with (unset: user tokens are refused).
 */
export type AuthenticatorSettings = Omit<Config['auth'], 'jwtSecret' | 'jwks'> & {
  keyPrefix: string;
  foreignFormats?: readonly ForeignKeyFormat[];
  userTokenKeys?: UserTokenKeys;
};

const MAX_CREDENTIAL_LENGTH = 8192;
const ORG_ID = /^org_[0-9a-hjkmnp-tv-z]{26}$/;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const unauthenticated = (reason: 'UNAUTHENTICATED' | 'INVALID_TOKEN' | 'TOKEN_EXPIRED' | 'INVALID_API_KEY', msg: string) =>
  new DomainError(reason, msg);

/**
 * Resolves who is calling and on which organization the call acts. Three kinds of caller:
 * users (JWT), API keys issued by this service, and internal services (configured tokens).
 */
export class Authenticator {
  private readonly serviceTokenHashes: Buffer[];

  constructor(
    private readonly s: AuthenticatorSettings,
    private readonly verifier: Verifier,
    private readonly failures?: AuthFailureLimiter,
  ) {
    // Hashing first gives equal-length buffers, so the comparison is constant-time.
    this.serviceTokenHashes = s.verifyTokens.map(sha256);
  }

  /**
   * Step 1: who is calling. Step 2 (effectiveOrganization) is separate so the interceptor can
   * log the caller even when step 2 refuses.
   */
  async principalOf(c: Credentials): Promise<Principal> {
    if (c.authorization.length + c.apiKey.length === 0) {
      throw unauthenticated('UNAUTHENTICATED', 'missing credentials: send "authorization: Bearer <token>" or "x-api-key: <key>"');
    }
    if (c.authorization.length + c.apiKey.length > 1) {
      throw unauthenticated('UNAUTHENTICATED', 'send exactly one credential (one authorization or one x-api-key header)');
    }
    if (c.apiKey.length === 1) return this.apiKeyPrincipal(c.apiKey[0], c.peer);
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(c.authorization[0]);
    if (!match || match[1].length > MAX_CREDENTIAL_LENGTH) {
      throw unauthenticated('INVALID_TOKEN', 'authorization must be "Bearer <token>"');
    }
    const token = match[1];
    if (parseSecret(token, this.s.keyPrefix)) return this.apiKeyPrincipal(token, c.peer);
    const service = this.serviceTokenIndex(token);
    if (service >= 0) return { kind: 'service', id: `service:${service + 1}` };
    // An imported key, after the service tokens: a configured token may happen to fit a foreign pattern.
    if (isForeignSecret(token, this.s.foreignFormats ?? [])) return this.apiKeyPrincipal(token, c.peer);
    if (JWT_SHAPE.test(token)) return this.userPrincipal(token);
    throw unauthenticated('INVALID_TOKEN', 'the bearer token is not a valid JWT, API key or service token');
  }

  /** A peer with too many failures is refused before its key is even looked up. */
  private async apiKeyPrincipal(secret: string, peer = ''): Promise<Principal> {
    const retryAfterMs = this.failures?.retryAfterMs(peer) ?? 0;
    if (retryAfterMs > 0) {
      throw new DomainError(
        'TOO_MANY_FAILED_AUTHENTICATIONS',
        `too many failed API-key authentications from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
        [],
        { retry_after_ms: String(retryAfterMs) },
      );
    }
    const invalid = (msg: string) => {
      this.failures?.fail(peer);
      return unauthenticated('INVALID_API_KEY', msg);
    };
    if (secret.length > MAX_CREDENTIAL_LENGTH) throw invalid('invalid API key');
    const { code, key } = await this.verifier.verify(secret, [], { enforceRateLimit: false });
    if (code !== 'VALID' || !key) throw invalid('the API key is missing, incorrect, revoked, archived or expired');
    return {
      kind: 'apiKey',
      id: key._id,
      orgId: key.org_id,
      scopes: key.scopes,
      environment: key.environment,
      expiresAt: key.expires_at_ms === null ? null : new Date(key.expires_at_ms),
      rateLimit: key.rate_limit && { limit: key.rate_limit.limit, windowSeconds: key.rate_limit.window_seconds },
      workspaceId: key.workspace_id,
      createdBy: key.created_by,
      allowSelfRevoke: key.allow_self_revoke,
    };
  }

  /** Whether `token` is one of VERIFY_TOKENS, compared in constant time (the forward-auth endpoint's check of the proxy calling it). */
  isServiceToken(token: string): boolean {
    return this.serviceTokenIndex(token) >= 0;
  }

  private serviceTokenIndex(token: string): number {
    const h = sha256(token);
    let found = -1;
    // Compare against every token so timing does not reveal which one matched.
    this.serviceTokenHashes.forEach((t, i) => {
      if (timingSafeEqual(t, h)) found = i;
    });
    return found;
  }

  private async userPrincipal(token: string): Promise<UserPrincipal> {
    const keys = this.s.userTokenKeys;
    if (!keys) throw unauthenticated('INVALID_TOKEN', 'user tokens are not accepted: no JWT key is configured');
    const options = {
      issuer: this.s.jwtIssuer,
      audience: this.s.jwtAudience,
      requiredClaims: ['exp', 'sub'],
      // Also requires `iat`: a token that does not say when it was issued has no age to bound.
      maxTokenAge: this.s.jwtMaxAgeSeconds,
      // The shared secret is for HS256 only; a JWKS's keys decide their own algorithms.
      algorithms: keys.kind === 'secret' ? ['HS256'] : undefined,
    };
    let payload: JWTPayload;
    try {
      const verified = keys.kind === 'secret' ? await jwtVerify(token, keys.secret, options) : await jwtVerify(token, keys.keyFor, options);
      payload = verified.payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) {
        throw unauthenticated(
          'TOKEN_EXPIRED',
          err.claim === 'iat'
            ? `the token was issued more than ${this.s.jwtMaxAgeSeconds} seconds ago; get a new one`
            : 'the token has expired; get a new one',
        );
      }
      throw unauthenticated('INVALID_TOKEN', 'the token is not valid (signature, issuer, audience or claims)');
    }
    return this.userFromClaims(payload);
  }

  private userFromClaims(p: JWTPayload): UserPrincipal {
    const orgId = p.org_id;
    const role = p.role;
    if (typeof p.sub !== 'string' || !isId('usr', p.sub)) throw unauthenticated('INVALID_TOKEN', 'claim "sub" must be a usr_ id');
    if (typeof orgId !== 'string' || !ORG_ID.test(orgId)) throw unauthenticated('INVALID_TOKEN', 'claim "org_id" must be an org_ id');
    if (role !== 'admin' && role !== 'member') throw unauthenticated('INVALID_TOKEN', 'claim "role" must be "admin" or "member"');
    const email = typeof p.email === 'string' ? p.email.toLowerCase() : undefined;
    const emailVerified = p.email_verified === true;
    return {
      kind: 'user',
      id: p.sub,
      email,
      emailVerified,
      orgId,
      role,
      staff: emailVerified && this.isStaffEmail(p.email),
    };
  }

  /**
   * ASCII only: toLowerCase maps some non-ASCII letters onto ASCII ones (KELVIN SIGN U+212A
   * becomes "k"), so "ops@staff.wor\u212A" would otherwise pass for a staff.work address.
   */
  private isStaffEmail(email: unknown): boolean {
    return typeof email === 'string' && /^[\x21-\x7e]+$/.test(email) && this.s.staffEmailDomains.includes(emailDomain(email.toLowerCase()));
  }

  /** Step 2. Staff may act on another organization with x-organization-id; nobody else may. */
  effectiveOrganization(principal: Principal, header: string[]): Authenticated {
    const own = principal.kind === 'service' ? '' : principal.orgId;
    if (header.length === 0) return { principal, orgId: own, actingAs: false };
    if (header.length > 1 || !ORG_ID.test(header[0])) {
      throw new DomainError('INVALID_ORGANIZATION_ID', 'x-organization-id must be one org_ id (^org_[0-9a-hjkmnp-tv-z]{26}$)', [
        { field: 'x-organization-id', reason: 'INVALID_ORGANIZATION_ID', description: 'must match ^org_[0-9a-hjkmnp-tv-z]{26}$' },
      ]);
    }
    if (principal.kind !== 'user' || !principal.staff) {
      throw new DomainError('ACTING_AS_FORBIDDEN', 'x-organization-id is honoured for staff only');
    }
    return { principal, orgId: header[0], actingAs: header[0] !== own };
  }
}

/** The domain is what follows the last "@" ("a@staff.example@evil.example" is not staff). */
function emailDomain(email: string): string {
  const at = email.lastIndexOf('@');
  return at > 0 ? email.slice(at + 1) : '';
}

function sha256(s: string): Buffer {
  // One-shot: the forward-auth endpoint checks a service token on every request.
  return hash('sha256', s, 'buffer');
}
