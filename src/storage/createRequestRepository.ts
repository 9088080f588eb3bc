import type { CreateRequestDocument, SealedSecret } from './documents';
import type { Collections } from './mongo';
import { isDuplicateKey } from './slotRepository';

/** AIP-155 request ids: the first CreateKey with an id claims it; retries find the claim. */
export class CreateRequestRepository {
  constructor(private readonly requests: Collections['createRequests']) {}

  /** True when this call now owns the request id; false when another call already does. */
  async claim(orgId: string, requestId: string, keyId: string, now: Date): Promise<boolean> {
    try {
      await this.requests.insertOne({ _id: `${orgId}:${requestId}`, org_id: orgId, key_id: keyId, created_at: now, secret_box: null });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  find(orgId: string, requestId: string): Promise<CreateRequestDocument | null> {
    return this.requests.findOne({ _id: `${orgId}:${requestId}` });
  }

  async attachSecret(orgId: string, requestId: string, box: SealedSecret): Promise<void> {
    await this.requests.updateOne({ _id: `${orgId}:${requestId}` }, { $set: { secret_box: box } });
  }

  /** Gives the id back after a failed create, or when its idempotency window has passed. */
  async release(orgId: string, requestId: string, keyId: string): Promise<void> {
    await this.requests.deleteOne({ _id: `${orgId}:${requestId}`, key_id: keyId });
  }
}
