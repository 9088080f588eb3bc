import type { CreateRequestClaim, SealedSecret } from '../domain/model';
import type { CreateRequestStore } from '../domain/ports';
import type { Collections, QueryLimits } from './mongo';
import { isDuplicateKey } from './slotRepository';

/** AIP-155 request ids: the first CreateKey with an id claims it; retries find the claim. */
export class CreateRequestRepository implements CreateRequestStore {
  constructor(
    private readonly requests: Collections['createRequests'],
    private readonly limits: QueryLimits,
  ) {}

  /** True when this call now owns the request id; false when another call already does. */
  async claim(requestId: string, claim: CreateRequestClaim): Promise<boolean> {
    try {
      await this.requests.insertOne({ _id: `${claim.org_id}:${requestId}`, ...claim });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  find(orgId: string, requestId: string): Promise<CreateRequestClaim | null> {
    return this.requests.findOne({ _id: `${orgId}:${requestId}` }, this.limits.options());
  }

  /** The key exists; `box` is the sealed secret replays may return (null: they return none). */
  async complete(orgId: string, requestId: string, box: SealedSecret | null): Promise<void> {
    await this.requests.updateOne({ _id: `${orgId}:${requestId}` }, { $set: { completed: true, secret_box: box } });
  }

  /** The key ended: no replay may hand its secret out again. */
  async forgetSecret(orgId: string, keyId: string): Promise<void> {
    const held = await this.requests
      .find({ org_id: orgId, key_id: keyId, secret_box: { $ne: null } }, { ...this.limits.options(), projection: { _id: 1 } })
      .toArray();
    // One document per write: never two writers on one document, never a multi-document update.
    for (const { _id } of held) await this.requests.updateOne({ _id }, { $set: { secret_box: null } });
  }

  /** Gives the id back after a failed create, or when its idempotency window has passed. */
  async release(orgId: string, requestId: string, keyId: string): Promise<void> {
    await this.requests.deleteOne({ _id: `${orgId}:${requestId}`, key_id: keyId });
  }
}
