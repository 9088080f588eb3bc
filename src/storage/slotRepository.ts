import { MongoServerError } from 'mongodb';
import type { SlotCount, SlotStore } from '../domain/ports';
import type { Collections, QueryLimits } from './mongo';

/** How long a slot may exist without its key before it is treated as leaked (crash mid-create). */
const ORPHAN_GRACE_MS = 60_000;
/** Random places tried before walking to a free one: all taken only when the org is nearly full. */
const RANDOM_TRIES = 4;
/** Inserts of free places that lost to a concurrent create, before giving up (as when full). */
const MAX_WALK_TRIES = 8;
/** Slots a refused create examines for orphans: all of them up to this cap, a random run above. */
const RECLAIM_WINDOW = 100;

export const isDuplicateKey = (err: unknown) => err instanceof MongoServerError && err.code === 11000;

const randomBelow = (n: number) => Math.floor(Math.random() * n);

/**
 * The cap on live keys per organization. Each live key holds one slot document whose _id is
 * `${org}:${n}` with n < cap; the unique _id index is what makes the cap hold under concurrent
 * creates. A counter with a conditional $inc would be simpler, but MongoDB-wire servers without
 * document-level atomicity (FerretDB on SQLite, measured here) lose such updates.
 *
 * A create inserts a random place and lets the unique _id refuse a taken one, so it reads no
 * slots however many the organization holds: expected tries cap / (cap − taken). Past
 * RANDOM_TRIES collisions it walks the taken places (index only) from a random one to the
 * first gap; a walk that finds none means all `cap` are held. Places handed out under a higher
 * cap than today's still count: each cap places were taken under is recorded first
 * (key_slot_caps), and under a lowered cap a create counts the slots before taking one.
 */
export class SlotRepository implements SlotStore, SlotCount {
  private readonly slots: Collections['slots'];
  private readonly caps: Collections['slotCaps'];
  private readonly keys: Collections['keys'];

  constructor(
    c: Pick<Collections, 'slots' | 'slotCaps' | 'keys'>,
    private readonly limits: QueryLimits,
  ) {
    this.slots = c.slots;
    this.caps = c.slotCaps;
    this.keys = c.keys;
  }

  /** Takes a free slot for `keyId` and returns its id; null when all `cap` slots are held by live keys. */
  async acquire(orgId: string, keyId: string, cap: number, now: Date): Promise<string | null> {
    const slot = await this.take(orgId, keyId, cap, now);
    if (slot !== null || (await this.reclaimOrphans(orgId, cap, now)) === 0) return slot;
    return this.take(orgId, keyId, cap, now);
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

  /** A free place under `cap` for the key, or null when all are held (or lost to concurrent creates). */
  private async take(orgId: string, keyId: string, cap: number, now: Date): Promise<string | null> {
    if ((await this.capLowered(orgId, cap, now)) && (await this.held(orgId)) >= cap) {
      return null;
    }
    for (let i = 0; i < RANDOM_TRIES; i++) {
      const slot = await this.insert(orgId, keyId, randomBelow(cap), now);
      if (slot) return slot;
    }
    let tries = 0;
    for await (const n of this.freePlaces(orgId, cap)) {
      const slot = await this.insert(orgId, keyId, n, now);
      if (slot || ++tries === MAX_WALK_TRIES) return slot;
    }
    return null;
  }

  /** The slot's id, or null when the place is taken. */
  private async insert(orgId: string, keyId: string, n: number, now: Date): Promise<string | null> {
    const _id = `${orgId}:${n}`;
    try {
      await this.slots.insertOne({ _id, org_id: orgId, key_id: keyId, n, created_at: now });
      return _id;
    } catch (err) {
      if (isDuplicateKey(err)) return null;
      throw err;
    }
  }

  /**
   * Whether places were handed out under a higher cap than `cap`; a cap not seen before is
   * recorded before any place is taken under it. Records are only ever inserted, so none is lost
   * to a concurrent write.
   */
  private async capLowered(orgId: string, cap: number, now: Date): Promise<boolean> {
    const highest = await this.caps.findOne(
      { org_id: orgId, cap: { $gte: cap } },
      { ...this.limits.options(), sort: { cap: -1 }, projection: { cap: 1 } },
    );
    if (highest) return highest.cap > cap;
    try {
      await this.caps.insertOne({ _id: `${orgId}:${cap}`, org_id: orgId, cap, created_at: now });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    return false;
  }

  /**
   * The free places below `cap`, from a random one on, wrapping round: the gaps between taken
   * numbers, read in order from the index, so the walk costs the distance to the first gap.
   */
  private async *freePlaces(orgId: string, cap: number): AsyncGenerator<number> {
    const start = randomBelow(cap);
    for (const [from, to] of [
      [start, cap],
      [0, start],
    ]) {
      let next = from;
      const taken = this.slots
        .find({ org_id: orgId, n: { $gte: from, $lt: to } }, { ...this.limits.options(), projection: { _id: 0, n: 1 } })
        .sort({ n: 1 });
      try {
        for await (const { n } of taken) {
          for (; next < n; next++) yield next;
          next = n + 1;
        }
      } finally {
        await taken.close();
      }
      for (; next < to; next++) yield next;
    }
  }

  /**
   * Frees slots whose key no longer exists or is no longer live (a create or revoke cut short),
   * among a run of RECLAIM_WINDOW from a random place: a refused create costs that run, not the
   * organization (with a cap above the window, an orphan is found by some later refusal).
   */
  private async reclaimOrphans(orgId: string, cap: number, now: Date): Promise<number> {
    const start = randomBelow(cap);
    const options = { ...this.limits.options(), projection: { key_id: 1, created_at: 1 } };
    const run = await this.slots
      .find({ org_id: orgId, n: { $gte: start } }, options)
      .sort({ n: 1 })
      .limit(RECLAIM_WINDOW)
      .toArray();
    if (run.length < RECLAIM_WINDOW) {
      const wrapped = this.slots
        .find({ org_id: orgId, n: { $lt: start } }, options)
        .sort({ n: 1 })
        .limit(RECLAIM_WINDOW - run.length);
      run.push(...(await wrapped.toArray()));
    }
    const graceEnd = new Date(now.getTime() - ORPHAN_GRACE_MS);
    const old = run.filter((s) => s.created_at < graceEnd);
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
    // The age again: a place freed and taken anew since it was read is not an orphan.
    const res = await this.slots.deleteMany({ _id: { $in: orphans }, created_at: { $lt: graceEnd } });
    return res.deletedCount;
  }

  /** Places held: every slot document, above a since-lowered cap too (GetOrganization's active_keys). */
  held(orgId: string): Promise<number> {
    return this.slots.countDocuments({ org_id: orgId }, this.limits.options());
  }
}
