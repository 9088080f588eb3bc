import type { Collection } from 'mongodb';
import type { OrganizationSettings } from '../domain/ports';
import type { OrganizationDocument } from './documents';
import type { QueryLimits } from './mongo';

/**
 * organizations: per-organization settings. Operators raise a plan's cap by setting `key_limit`
 * on the organization's document (docs/architecture.md, "Storage").
 */
export class OrganizationRepository implements OrganizationSettings {
  constructor(
    private readonly organizations: Collection<OrganizationDocument>,
    private readonly limits: QueryLimits,
  ) {}

  /** The organization's cap on live keys: its own `key_limit`, else the deployment default. */
  async keyLimit(orgId: string, fallback: number): Promise<number> {
    const org = await this.organizations.findOne({ _id: orgId }, { ...this.limits.options(), projection: { key_limit: 1 } });
    return org?.key_limit ?? fallback;
  }
}
