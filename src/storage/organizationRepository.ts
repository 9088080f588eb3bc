import type { Collection } from 'mongodb';
import type { OrganizationLimits, OrganizationSettings } from '../domain/ports';
import type { OrganizationDocument } from './documents';
import type { QueryLimits } from './mongo';

/**
 * organizations: per-organization settings. Staff set a plan's cap with SetOrganizationKeyLimit,
 * stored as `key_limit` on the organization's document (docs/architecture.md, "Storage").
 */
export class OrganizationRepository implements OrganizationSettings, OrganizationLimits {
  constructor(
    private readonly organizations: Collection<OrganizationDocument>,
    private readonly limits: QueryLimits,
  ) {}

  /** The organization's cap on live keys: its own `key_limit`, else the deployment default. */
  async keyLimit(orgId: string, fallback: number): Promise<number> {
    return (await this.ownKeyLimit(orgId)) ?? fallback;
  }

  async ownKeyLimit(orgId: string): Promise<number | null> {
    const org = await this.organizations.findOne({ _id: orgId }, { ...this.limits.options(), projection: { key_limit: 1 } });
    return org?.key_limit ?? null;
  }

  /** Creates the organization's document when it has none (organizations exist by their keys alone until then). */
  async setKeyLimit(orgId: string, limit: number, now: Date): Promise<number | null> {
    const before = await this.organizations.findOneAndUpdate(
      { _id: orgId },
      { $set: { key_limit: limit }, $setOnInsert: { created_at: now } },
      // No projection: FerretDB's findAndModify does not take one, and the document is small.
      { upsert: true, returnDocument: 'before' },
    );
    return before?.key_limit ?? null;
  }
}
