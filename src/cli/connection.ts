import { Metadata } from '@grpc/grpc-js';
import { checkHealth, type HealthAnswer } from '../client/health';
import { connectClients, type ApiKeysClients } from '../client/promiseClient';

/**
 * The service as one keyctl run sees it: the clients (made on first use, so `health` opens
 * none), the caller's credentials on every call, and one deadline for the whole command.
 */
export class Connection {
  /** Call options of every call: the run's deadline. */
  readonly opts: { deadline: Date };
  private clients?: ApiKeysClients;

  constructor(
    readonly addr: string,
    readonly timeoutMs: number,
    private readonly token?: string,
    private readonly org?: string,
  ) {
    this.opts = { deadline: new Date(Date.now() + timeoutMs) };
  }

  get keys(): ApiKeysClients['keys'] {
    this.clients ??= connectClients(this.addr);
    return this.clients.keys;
  }

  /** A fresh Metadata per call (grpc-js may keep a reference to it). */
  md(): Metadata {
    const md = new Metadata();
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    if (this.org) md.set('x-organization-id', this.org);
    return md;
  }

  health(service: string): Promise<HealthAnswer> {
    return checkHealth(this.addr, service, this.timeoutMs);
  }

  close(): void {
    this.clients?.close();
  }
}
