import { DomainError } from './errors';
import type { CallContext } from './principal';

/**
 * The authorization rules for KeyService, in one place (the README carries the same table,
 * and test/integration/callers.test.ts checks every cell of it):
 * - users: `member` may read, `admin` may also change keys; staff act with their own role;
 * - API keys: any scope may read (seed 000: "read works"), `write` is needed to change keys,
 *   a key never grants scopes it lacks (SCOPE_ESCALATION), and a key with allow_self_revoke
 *   may revoke itself whatever its scopes (seed 002);
 * - services: VerifyService only.
 * Who may use the x-organization-id header is decided at authentication (staff only).
 * Organization scoping is not decided here: every query is bound to ctx.orgId, so a key of
 * another organization is simply NOT_FOUND.
 */
export type Access = 'read' | 'write';

export function authorize(ctx: CallContext, access: Access): void {
  const p = ctx.principal;
  switch (p.kind) {
    case 'service':
      throw new DomainError('PERMISSION_DENIED', 'service credentials may call VerifyService only');
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

/** RevokeKey: `write`, or a key revoking itself with allow_self_revoke (seed 002). */
export function authorizeRevoke(ctx: CallContext, keyId: string): void {
  const p = ctx.principal;
  if (p.kind === 'apiKey' && p.id === keyId && p.allowSelfRevoke) return;
  authorize(ctx, 'write');
}

/** A key can never mint or grant scopes it does not hold itself. */
export function assertNoEscalation(ctx: CallContext, requested: string[]): void {
  const p = ctx.principal;
  if (p.kind !== 'apiKey') return;
  const missing = requested.filter((s) => !p.scopes.includes(s));
  if (missing.length > 0) {
    throw new DomainError('SCOPE_ESCALATION', `this API key cannot grant scopes it does not hold: ${missing.join(', ')}`, [], {
      scopes: missing.join(','),
    });
  }
}

/** The principal recorded as creator/revoker: a key acts as itself, recorded with its creator (seed 003). */
export function actorId(ctx: CallContext): string {
  return ctx.principal.id;
}

/** VerifyService answers internal services only: users and API keys are refused. */
export function authorizeVerify(ctx: CallContext): void {
  if (ctx.principal.kind !== 'service') {
    throw new DomainError('PERMISSION_DENIED', 'VerifyService needs a service credential (one of VERIFY_TOKENS)');
  }
}
