import type { CreateRequestClaim, SealedSecret } from '../../../src/domain/model';
import type { CreateRequestStore } from '../../../src/domain/ports';

/** Request-id claims in memory, as CreateRequestRepository behaves: one claim per organization and id. */
export class InMemoryCreateRequestStore implements CreateRequestStore {
  readonly claims = new Map<string, CreateRequestClaim>();

  async claim(requestId: string, claim: CreateRequestClaim): Promise<boolean> {
    const id = `${claim.org_id}:${requestId}`;
    if (this.claims.has(id)) return false;
    this.claims.set(id, structuredClone(claim));
    return true;
  }

  async find(orgId: string, requestId: string): Promise<CreateRequestClaim | null> {
    const claim = this.claims.get(`${orgId}:${requestId}`);
    return claim ? structuredClone(claim) : null;
  }

  async complete(orgId: string, requestId: string, box: SealedSecret | null): Promise<void> {
    const claim = this.claims.get(`${orgId}:${requestId}`);
    if (claim) Object.assign(claim, { completed: true, secret_box: box });
  }

  async forgetSecret(orgId: string, keyId: string): Promise<void> {
    for (const claim of this.claims.values()) if (claim.org_id === orgId && claim.key_id === keyId) claim.secret_box = null;
  }

  async release(orgId: string, requestId: string, keyId: string): Promise<void> {
    const id = `${orgId}:${requestId}`;
    if (this.claims.get(id)?.key_id === keyId) this.claims.delete(id);
  }
}
