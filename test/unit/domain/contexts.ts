import type { ApiKeyPrincipal, CallContext, Principal } from '../../../src/domain/principal';

/** Call contexts for unit tests of the use cases: who calls, on which organization. */
export function contextOf(principal: Principal, orgId: string, over: Partial<CallContext> = {}): CallContext {
  return { principal, orgId, actingAs: false, requestId: 'req-1', method: '/apikeys.v1.KeyService/Test', ...over };
}

export function userContext(orgId: string, role: 'admin' | 'member' = 'admin', id = 'usr_01jabcdefghjkmnpqrstvwxyz0'): CallContext {
  return contextOf({ kind: 'user', id, emailVerified: true, orgId, role, staff: false }, orgId);
}

/** An API key calling with what it holds; by default `read`+`write` in live, unbounded otherwise. */
export function apiKeyContext(orgId: string, over: Partial<ApiKeyPrincipal> = {}): CallContext {
  return contextOf(
    {
      kind: 'apiKey',
      id: 'key_01jzzzzzzzzzzzzzzzzzzzzzzz',
      orgId,
      scopes: ['read', 'write'],
      environment: 'live',
      expiresAt: null,
      rateLimit: null,
      workspaceId: null,
      createdBy: 'usr_01jabcdefghjkmnpqrstvwxyz0',
      allowSelfRevoke: false,
      ...over,
    },
    orgId,
  );
}
