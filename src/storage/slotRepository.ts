import { MongoServerError, type Collection } from 'mongodb';
import type { SlotCount, SlotStore } from '../domain/ports';
import type { KeyDocument, KeySlotDocument } from './documents';
import type { QueryLimits } from './mongo';

/** How long a slot may exist without its key before it is treated as leaked (crash mid-create). */
const ORPHAN_GRACE_MS = 60_000;
const MAX_ATTEMPTS = 8;

export const isDuplicateKey = (err: unknown) => err instanceof MongoServerError && err.code === 11000;

/**
 * The cap on live keys per organization. Each live key holds one slot document whose _id is
 * `${org}:${n}` with n < cap; the unique _id index is what makes the cap hold under concurrent
 * creates. A counter with a conditional $inc would be simpler, but MongoDB-wire servers without
 * document-level atomicity (FerretDB on SQLite, measured here) lose such updates.
 */
export class SlotRepository implements SlotStore, SlotCount {
  constructor(
    private readonly slots: Collection<KeySlotDocument>,
    private readonly keys: Collection<KeyDocument>,
    private readonly limits: QueryLimits,
  ) {}

  /** Takes a free slot for `keyId` and returns its id; null when all `cap` slots are held by live keys. */
  async acquire(orgId: string, keyId: string, cap: number, now: Date): Promise<string | null> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const free = await this.freeSlot(orgId, cap);
      if (free === null) {
        if (attempt === 0 && (await this.reclaimOrphans(orgId, now)) > 0) continue;
        return null;
      }
      const slotId = `${orgId}:${free}`;
      try {
        await this.slots.insertOne({ _id: slotId, org_id: orgId, key_id: keyId, created_at: now });
        return slotId;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
    return null;
  }

  /** Frees every slot the key holds (it stopped being live). */
  async release(orgId: string, keyId: string): Promise<void> {
    await this.slots.deleteMany({ org_id: orgId, key_id: keyId });
  }

  /** Frees one slot (an acquisition whose change did not happen). */
  async releaseSlot(slotId: string): Promise<void> {
    await this.slots.deleteOne({ _id: slotId });
  }

  /** Rotation: the successor inherits its predecessor's place, so the live count is unchanged. */
  async transfer(orgId: string, fromKeyId: string, toKeyId: string): Promise<void> {
    await this.slots.updateMany({ org_id: orgId, key_id: fromKeyId }, { $set: { key_id: toKeyId } });
  }

  /**
   * A random free slot number, or null when all `cap` are taken. Random picks spread concurrent
   * creators over different _ids; the cost follows the slots taken, not the cap.
   */
  private async freeSlot(orgId: string, cap: number): Promise<number | null> {
    const taken = new Set(
      (await this.slots.find({ org_id: orgId }, { ...this.limits.options(), projection: { _id: 1 } }).toArray()).map((s) =>
        Number(s._id.slice(orgId.length + 1)),
      ),
    );
    // Slots above a since-lowered cap still count against it.
    if (taken.size >= cap) return null;
    for (let i = 0; i < 16; i++) {
      const n = Math.floor(Math.random() * cap);
      if (!taken.has(n)) return n;
    }
    const start = Math.floor(Math.random() * cap);
    for (let i = 0; i < cap; i++) {
      const n = (start + i) % cap;
      if (!taken.has(n)) return n;
    }
    return null;
  }

  /** Frees slots whose key no longer exists or is no longer live (a create or revoke cut short). */
  private async reclaimOrphans(orgId: string, now: Date): Promise<number> {
    const old = await this.slots
      .find({ org_id: orgId, created_at: { $lt: new Date(now.getTime() - ORPHAN_GRACE_MS) } }, this.limits.options())
      .toArray();
    if (old.length === 0) return 0;
    const live = new Set(
      (
        await this.keys
          .find({ _id: { $in: old.map((s) => s.key_id) }, status: 'active' }, { ...this.limits.options(), projection: { _id: 1 } })
          .toArray()
      ).map((k) => k._id),
    );
    const orphans = old.filter((s) => !live.has(s.key_id)).map((s) => s._id);
    if (orphans.length === 0) return 0;
    const res = await this.slots.deleteMany({ _id: { $in: orphans } });
    return res.deletedCount;
  }

  /** Places held: every slot document, above a since-lowered cap too (GetOrganization's active_keys). */
  held(orgId: string): Promise<number> {
    return this.slots.countDocuments({ org_id: orgId }, this.limits.options());
  }
}
