import { DomainError, type Reason } from './errors';
import type { CallContext, Principal } from './principal';

/**
 * The authorization rules, in one place (docs/security.md carries the same table, and
 * test/integration/callers.test.ts checks every cell of it):
 * - users: `member` may read, `admin` may also change keys; staff act with their own role;
 * - API keys: any scope may read, `write` is needed to change keys, and a key acts only on keys
 *   it dominates (see `escalation`); a key with allow_self_revoke may revoke itself whatever
 *   its scopes;
 * - services: VerifyService, plus LookupKey and ReportLeakedKeys (see `authorizeBackoffice`).
 * The organization and leaked-key RPCs have rules of their own: `authorizeBackoffice`.
 * Who may use the x-organization-id header is decided at authentication (staff only).
 * Organization scoping is not decided here: every query is bound to ctx.orgId, so a key of
 * another organization is simply NOT_FOUND.
 */
export type Access = 'read' | 'write';

const SERVICE_ONLY = 'service credentials may call VerifyService, LookupKey and ReportLeakedKeys only';

export function authorize(ctx: CallContext, access: Access): void {
  const p = ctx.principal;
  switch (p.kind) {
    case 'service':
      throw new DomainError('PERMISSION_DENIED', SERVICE_ONLY);
    case 'user':
      if (access === 'write' && p.role !== 'admin') {
        throw new DomainError('PERMISSION_DENIED', 'role "member" may read keys; changing them needs role "admin"');
      }
      return;
    case 'apiKey':
      if (access === 'write' && !p.scopes.includes('write')) {
        throw new DomainError('INSUFFICIENT_SCOPE', 'this API key needs the "write" scope', [], { required_scope: 'write' });
      }
      return;
  }
}

/** What a key holds: the dimensions in which one key can hold more than another. */
export interface KeyBounds {
  scopes: readonly string[];
  environment: 'live' | 'test';
  expiresAt: Date | null;
  rateLimit: { limit: number; windowSeconds: number } | null;
  workspaceId: string | null;
}

export type EscalationReason = Extract<
  Reason,
  'SCOPE_ESCALATION' | 'ENVIRONMENT_ESCALATION' | 'EXPIRY_ESCALATION' | 'RATE_LIMIT_ESCALATION' | 'WORKSPACE_ESCALATION'
>;

export interface Escalation {
  reason: EscalationReason;
  message: string;
  metadata: Record<string, string>;
}

/**
 * The one rule: the first dimension in which `key` holds more than `holder`, or null when
 * `holder` dominates it. A key is dominated when its scopes are a subset of the holder's, its
 * environment is the holder's, it expires no later (never only if the holder never does), its
 * rate limit is no laxer (none only if the holder has none: a limit no higher per a window no
 * shorter), and it is in the holder's workspace when the holder is bound to one. Pure.
 */
export function escalation(holder: KeyBounds, key: KeyBounds): Escalation | null {
  const missing = key.scopes.filter((s) => !holder.scopes.includes(s));
  if (missing.length > 0) {
    return { reason: 'SCOPE_ESCALATION', message: `scopes not held: ${missing.join(', ')}`, metadata: { scopes: missing.join(',') } };
  }
  if (key.environment !== holder.environment) {
    return {
      reason: 'ENVIRONMENT_ESCALATION',
      message: `environment "${key.environment}" is not "${holder.environment}"`,
      metadata: { environment: key.environment },
    };
  }
  if (holder.expiresAt && (!key.expiresAt || key.expiresAt.getTime() > holder.expiresAt.getTime())) {
    return {
      reason: 'EXPIRY_ESCALATION',
      message: `expire_time must be set and no later than ${holder.expiresAt.toISOString()}`,
      metadata: { max_expire_time: holder.expiresAt.toISOString() },
    };
  }
  const hl = holder.rateLimit;
  const kl = key.rateLimit;
  if (hl && (!kl || kl.limit > hl.limit || kl.windowSeconds < hl.windowSeconds)) {
    return {
      reason: 'RATE_LIMIT_ESCALATION',
      message: `rate_limit must be set, at most ${hl.limit} per a window of at least ${hl.windowSeconds} s`,
      metadata: { max_limit: String(hl.limit), min_window_seconds: String(hl.windowSeconds) },
    };
  }
  if (holder.workspaceId !== null && key.workspaceId !== holder.workspaceId) {
    return {
      reason: 'WORKSPACE_ESCALATION',
      message: `workspace must be "${holder.workspaceId}"`,
      metadata: { workspace_id: holder.workspaceId },
    };
  }
  return null;
}

/**
 * Refuses unless the caller dominates every given state of a key (as it is, as it would
 * become). Admin users dominate their whole organization; `write` access is checked before.
 */
export function assertDominates(ctx: CallContext, ...keys: KeyBounds[]): void {
  const p = ctx.principal;
  if (p.kind !== 'apiKey') return;
  for (const key of keys) {
    const e = escalation(p, key);
    if (e) throw new DomainError(e.reason, `this API key cannot act on a key that holds more than itself: ${e.message}`, [], e.metadata);
  }
}

/** A key revoking itself with allow_self_revoke: the one exception to write access and dominance. */
export function isSelfRevoke(p: Principal, keyId: string): boolean {
  return p.kind === 'apiKey' && p.id === keyId && p.allowSelfRevoke;
}

/** The principal recorded as creator/revoker: a key acts as itself. */
export function actorId(ctx: CallContext): string {
  return ctx.principal.id;
}

/**
 * ImportKeys: admin users of the organization, staff acting as it with their own admin role. Never
 * an API key, whatever its scopes: an import brings in credentials this service did not issue, and
 * a person of the organization decides that.
 */
export function authorizeImport(ctx: CallContext): void {
  const p = ctx.principal;
  if (p.kind === 'user' && p.role === 'admin') return;
  throw new DomainError('PERMISSION_DENIED', 'importing keys needs an admin user of the organization (or staff acting as it)');
}

/** VerifyService answers internal services only: users and API keys are refused. */
export function authorizeVerify(ctx: CallContext): void {
  if (ctx.principal.kind !== 'service') {
    throw new DomainError('PERMISSION_DENIED', 'VerifyService needs a service credential (one of VERIFY_TOKENS)');
  }
}

/** The organization and leaked-key RPCs, by what they do. */
export type BackofficeAction = 'organization.read' | 'organization.limit' | 'secret.lookup' | 'leak.report';

/**
 * Who may call the organization and leaked-key RPCs (docs/security.md carries the table):
 * - GetOrganization: admin users of the organization, and staff;
 * - SetOrganizationKeyLimit: staff admins only;
 * - LookupKey: staff and services; ReportLeakedKeys (it revokes): staff admins and services.
 * Staff act with their own role, so a staff member reads and never changes. API keys never.
 */
export function authorizeBackoffice(ctx: CallContext, action: BackofficeAction): void {
  const p = ctx.principal;
  const changes = action === 'organization.limit' || action === 'leak.report';
  switch (p.kind) {
    case 'service':
      if (action === 'secret.lookup' || action === 'leak.report') return;
      throw new DomainError('PERMISSION_DENIED', SERVICE_ONLY);
    case 'apiKey':
      throw new DomainError('PERMISSION_DENIED', 'API keys may not call this; a user of the organization or staff may');
    case 'user':
      if (p.staff) {
        if (changes && p.role !== 'admin') throw new DomainError('PERMISSION_DENIED', 'staff with role "member" may read only');
        return;
      }
      if (action === 'organization.read' && p.role === 'admin') return;
      throw new DomainError(
        'PERMISSION_DENIED',
        action === 'organization.read' ? 'needs role "admin"' : 'staff only (a verified email in STAFF_EMAIL_DOMAINS)',
      );
  }
}

/**
 * The organization a key found by its secret must belong to: staff acting as an organization
 * see its keys only (others' are NOT_FOUND); services and staff on their own see every
 * organization's, the secret naming the key.
 */
export function secretLookupOrg(ctx: CallContext): string | null {
  return ctx.actingAs ? ctx.orgId : null;
}

/**
 * The call as it acts in `orgId`, the organization of a key found by its secret: audited there,
 * and as acting-as when a user (staff) acts outside their own organization.
 */
export function actingIn(ctx: CallContext, orgId: string): CallContext {
  const p = ctx.principal;
  return {
    principal: p,
    orgId,
    actingAs: p.kind === 'user' && p.orgId !== orgId,
    requestId: ctx.requestId,
    method: ctx.method,
    deadline: ctx.deadline,
    signal: ctx.signal,
  };
}
