import type { Metadata, ServerInterceptingCallInterface, ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import type { Authenticator, Credentials } from '../../domain/authentication';
import type { Logger } from '../../logging/logger';
import { attachContext, RpcContext } from '../callContext';
import { toDomainError, toStatus } from '../errors';
import { InterceptorCall } from './interceptorCall';
import { requestIdOf } from './requestId';

function strings(metadata: Metadata, key: string): string[] {
  return metadata.get(key).map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
}

/** "10.0.0.7:51234" → "10.0.0.7", "::1:51234" → "::1": a peer is its host, whatever the connection. */
export function peerHost(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const host = colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
  return host.replace(/^\[(.*)\]$/, '$1');
}

function credentialsOf(metadata: Metadata, peer: string): Credentials {
  return {
    authorization: strings(metadata, 'authorization'),
    apiKey: strings(metadata, 'x-api-key'),
    organizationId: strings(metadata, 'x-organization-id'),
    peer: peerHost(peer),
  };
}

class AuthenticationCall extends InterceptorCall {
  private ctx?: RpcContext;
  /** A status went out through here: a later onCancel is the call's end, not a cancellation. */
  private answered = false;

  constructor(
    next: ServerInterceptingCallInterface,
    private readonly authenticator: Authenticator,
    private readonly logger: Logger,
    private readonly method: string,
  ) {
    super(next);
  }

  /**
   * Whatever throws, here or while passing the metadata on, answers the call: a throw escaping
   * this listener would leave the call hanging, and a rejection nobody handles ends the process.
   */
  override async onReceiveMetadata(metadata: Metadata): Promise<void> {
    try {
      const credentials = credentialsOf(metadata, this.getPeer());
      const principal = await this.authenticator.principalOf(credentials);
      this.ctx = new RpcContext(principal, requestIdOf(metadata), this.method, this.deadlineMs());
      attachContext(metadata, this.ctx);
      this.ctx.admit(this.authenticator.effectiveOrganization(principal, credentials.organizationId));
      super.onReceiveMetadata(metadata);
    } catch (err) {
      this.sendStatus(toStatus(toDomainError(err, this.logger)));
    }
  }

  override sendStatus(status: PartialStatusObject): void {
    this.answered = true;
    super.sendStatus(status);
  }

  override onCancel(): void {
    if (!this.answered) this.ctx?.abort(this.deadlinePassed());
    super.onCancel();
  }
}

/**
 * Authenticates the call, resolves the organization it acts on, and hands handlers (and the
 * access log) the context: caller, organization, request id, method, deadline, and a signal
 * that aborts when the client cancels or the deadline passes. Needs requestIdInterceptor before
 * it. Credentials are never logged.
 */
export function authenticationInterceptor(authenticator: Authenticator, logger: Logger): ServerInterceptor {
  return (descriptor, call) => new AuthenticationCall(call, authenticator, logger, descriptor.path);
}
