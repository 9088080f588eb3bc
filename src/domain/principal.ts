/** Who is calling, as resolved by the transport's interceptor before any handler runs. */
export type Role = 'admin' | 'member';

export interface UserPrincipal {
  kind: 'user';
  /** "usr_…" from the JWT's `sub`. */
  id: string;
  email?: string;
  emailVerified: boolean;
  orgId: string;
  role: Role;
  /** Verified email in a configured staff domain: may act as another organization. */
  staff: boolean;
}

export interface ApiKeyPrincipal {
  kind: 'apiKey';
  /** "key_…" */
  id: string;
  orgId: string;
  scopes: string[];
  /** The key acts only within what it holds: these bound every key it creates or changes. */
  environment: 'live' | 'test';
  expiresAt: Date | null;
  rateLimit: { limit: number; windowSeconds: number } | null;
  workspaceId: string | null;
  /** Who created the key (recorded; the key still acts as itself). */
  createdBy: string;
  allowSelfRevoke: boolean;
}

export interface ServicePrincipal {
  kind: 'service';
  /** A stable, non-secret label of the service credential, e.g. "service:1". */
  id: string;
}

export type Principal = UserPrincipal | ApiKeyPrincipal | ServicePrincipal;

/** What every handler receives: the caller and the organization the call acts on. */
export interface CallContext {
  principal: Principal;
  /** The effective organization; empty for services, which act on no organization. */
  orgId: string;
  /** Set when a staff member acts on another organization via x-organization-id. */
  actingAs: boolean;
  requestId: string;
  /** Full gRPC method path, for audit and logs. */
  method: string;
  /** When the caller stops waiting, in milliseconds since the epoch; Infinity when it set no deadline. */
  deadline?: number;
  /** Aborts when the caller cancels or the deadline passes: work whose answer nobody awaits can stop. */
  signal?: AbortSignal;
}
