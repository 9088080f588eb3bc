import type { Metadata } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Authenticator, Credentials } from '../../domain/authentication';
import type { Principal } from '../../domain/principal';
import type { Logger } from '../../logging/logger';
import { attachContext, RpcContext } from '../callContext';
import { toDomainError, toStatus } from '../errors';
import { requestIdSourceOf } from './requestId';

/** A text header's values: grpc-js holds them as strings (only "-bin" headers hold Buffers). */
const text = (metadata: Metadata, key: string) => metadata.get(key) as string[];

/** "10.0.0.7:51234" → "10.0.0.7", "::1:51234" → "::1": a peer is its host, whatever the connection. */
export function peerHost(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const host = colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
  return host.replace(/^\[(.*)\]$/, '$1');
}

class CallCredentials implements Credentials {
  readonly authorization: string[];
  readonly apiKey: string[];
  readonly organizationId: string[];
  private host?: string;

  constructor(
    metadata: Metadata,
    private readonly call: { getPeer(): string },
  ) {
    this.authorization = text(metadata, 'authorization');
    this.apiKey = text(metadata, 'x-api-key');
    this.organizationId = text(metadata, 'x-organization-id');
  }

  /** Worked out only if asked for: only API-key authentication needs it. */
  get peer(): string {
    return (this.host ??= peerHost(this.call.getPeer()));
  }
}

/** More distinct accepted headers than this would mean something odd; past it, nothing more is remembered. */
const MAX_REMEMBERED_SERVICE_HEADERS = 256;

/**
 * The service callers already authenticated, by their exact authorization header. Gateways send
 * the same service token on every call: hashing and comparing it against every configured token
 * each time was a fixed cost of every VerifyKey. Only headers the Authenticator accepted are
 * remembered, so a header that is not one of them still goes the Authenticator's whole,
 * constant-time way, and the answer it gets says no more than before. Service tokens come from the
 * configuration read at start, so an accepted one stays valid as long as this process runs.
 */
class ServiceCallers {
  private readonly known = new Map<string, Principal>();

  /** The service principal this exact header was accepted as, when it carries nothing else. */
  lookup(c: Credentials): Principal | undefined {
    return c.authorization.length === 1 && c.apiKey.length === 0 ? this.known.get(c.authorization[0]) : undefined;
  }

  remember(c: Credentials, principal: Principal): void {
    if (principal.kind !== 'service' || c.authorization.length !== 1 || c.apiKey.length !== 0) return;
    if (this.known.size < MAX_REMEMBERED_SERVICE_HEADERS) this.known.set(c.authorization[0], principal);
  }
}

/** What authentication needs of a call: its one interceptor part (serviceCall.ts). */
export interface AuthenticatingCall {
  readonly method: string;
  /** The context, once the caller is known: the call aborts it when cancelled. */
  ctx?: RpcContext;
  getPeer(): string;
  deadlineMs(): number;
  /** The caller is admitted: the metadata, carrying the context, goes on to the handler. */
  admitted(metadata: Metadata): void;
  sendStatus(status: PartialStatusObject): void;
}

/**
 * Authenticates each call, resolves the organization it acts on, and hands handlers (and the
 * access log) the context: caller, organization, request id, method, deadline, and a signal
 * that aborts when the client cancels or the deadline passes (serviceCall.ts aborts it). Needs
 * the request id part before it. Credentials are never logged.
 */
export class Authentication {
  private readonly services = new ServiceCallers();

  constructor(
    private readonly authenticator: Authenticator,
    private readonly logger: Logger,
  ) {}

  /**
   * Whatever throws, here or while passing the metadata on, answers the call: a throw escaping
   * the call's listener would leave the call hanging, and a rejection nobody handles ends the
   * process. A remembered service caller is admitted at once, without waiting a turn.
   */
  authenticate(call: AuthenticatingCall, metadata: Metadata): void {
    let credentials: Credentials;
    try {
      credentials = new CallCredentials(metadata, call);
      const known = this.services.lookup(credentials);
      if (known) {
        this.admit(call, metadata, credentials, known);
        return;
      }
    } catch (err) {
      this.refuse(call, err);
      return;
    }
    this.authenticator.principalOf(credentials).then(
      (principal) => {
        this.services.remember(credentials, principal);
        this.admit(call, metadata, credentials, principal);
      },
      (err: unknown) => {
        this.refuse(call, err);
      },
    );
  }

  private admit(call: AuthenticatingCall, metadata: Metadata, credentials: Credentials, principal: Principal): void {
    try {
      const ctx = new RpcContext(principal, requestIdSourceOf(metadata), call.method, call.deadlineMs());
      call.ctx = ctx;
      attachContext(metadata, ctx);
      ctx.admit(this.authenticator.effectiveOrganization(principal, credentials.organizationId));
      call.admitted(metadata);
    } catch (err) {
      this.refuse(call, err);
    }
  }

  private refuse(call: AuthenticatingCall, err: unknown): void {
    call.sendStatus(toStatus(toDomainError(err, this.logger)));
  }
}
