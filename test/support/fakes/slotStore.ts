import type { OrganizationSettings, SlotStore } from '../../../src/domain/ports';
import { Faults } from './faults';

/** Slots in memory, as SlotRepository behaves: at most `cap` per organization, one id per place. */
export class InMemorySlotStore implements SlotStore {
  /** Slot id → the key holding it. */
  readonly slots = new Map<string, { orgId: string; keyId: string }>();
  readonly faults = new Faults<'release' | 'transfer'>();

  async acquire(orgId: string, keyId: string, cap: number): Promise<string | null> {
    const taken = new Set([...this.slots].filter(([, s]) => s.orgId === orgId).map(([id]) => id));
    if (taken.size >= cap) return null;
    for (let n = 0; n < cap; n++) {
      const id = `${orgId}:${n}`;
      if (taken.has(id)) continue;
      this.slots.set(id, { orgId, keyId });
      return id;
    }
    return null;
  }

  async release(orgId: string, keyId: string): Promise<void> {
    this.faults.check('release');
    for (const [id, s] of this.slots) if (s.orgId === orgId && s.keyId === keyId) this.slots.delete(id);
  }

  async releaseSlot(slotId: string): Promise<void> {
    this.slots.delete(slotId);
  }

  async transfer(orgId: string, fromKeyId: string, toKeyId: string): Promise<void> {
    this.faults.check('transfer');
    for (const s of this.slots.values()) if (s.orgId === orgId && s.keyId === fromKeyId) s.keyId = toKeyId;
  }

  /** The keys holding a slot in the organization. */
  holders(orgId: string): string[] {
    return [...this.slots.values()]
      .filter((s) => s.orgId === orgId)
      .map((s) => s.keyId)
      .sort();
  }
}

/** Per-organization caps; organizations without one use the deployment default. */
export class InMemoryOrganizations implements OrganizationSettings {
  readonly limits = new Map<string, number>();

  async keyLimit(orgId: string, fallback: number): Promise<number> {
    return this.limits.get(orgId) ?? fallback;
  }
}
