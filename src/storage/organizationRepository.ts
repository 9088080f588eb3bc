import type { Collection } from 'mongodb';
import type { OrganizationDocument } from './documents';

export class OrganizationRepository {
  constructor(private readonly organizations: Collection<OrganizationDocument>) {}

  /** The organization's cap on live keys: its own `key_limit`, else the deployment default. */
  async keyLimit(orgId: string, fallback: number): Promise<number> {
    const org = await this.organizations.findOne({ _id: orgId }, { projection: { key_limit: 1 } });
    return org?.key_limit ?? fallback;
  }

  async setKeyLimit(orgId: string, limit: number, now: Date): Promise<void> {
    await this.organizations.updateOne(
      { _id: orgId },
      { $set: { key_limit: limit }, $setOnInsert: { created_at: now } },
      { upsert: true },
    );
  }
}
