import { DomainError } from './errors';
import type { CallContext } from './principal';

/**
 * The authorization rules for KeyService, in one place (the README carries the same table):
 * - users: `member` may read, `admin` may also change keys;
 * - API keys: any scope may read (seed 000: "read works"), `write` is needed to change keys;
 * - services: VerifyService only.
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
