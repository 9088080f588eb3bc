import type { AuditLog } from './audit';
import { authorize } from './authorization';
import type { KeyFilters, KeyStatus, StoredKey } from './model';
import { encodePageToken } from './pageToken';
import { positionFromToken, toPage } from './paging';
import type { CallContext } from './principal';
import type { KeyStore } from './ports';
import { normalizePageSize, validateKeyFilters, validateOptionalTime, type KeyFiltersInput } from './validation';

export interface ListKeysInput extends KeyFiltersInput {
  pageSize: number;
  pageToken: string;
  includeRevoked: boolean;
  includeArchived: boolean;
  unusedSince?: Date;
}

export interface KeyPage {
  keys: StoredKey[];
  nextPageToken: string;
}

export interface KeyListingDeps {
  keys: Pick<KeyStore, 'list'>;
  audit: AuditLog;
  pageTokenKey: Buffer;
}

/** unused_since reads at most this many pages' worth of keys per call, so a call costs its page, not the org. */
const UNUSED_SCAN_PAGES = 5;

type Position = { createdAt: Date; id: string };

/**
 * What a page token is bound to (AIP-158): the organization and every filter. Without the new
 * filters it is what it was before them, so tokens issued by an instance of the previous version
 * stay valid across an upgrade.
 */
function tokenScope(orgId: string, statuses: KeyStatus[], unusedSince: Date | undefined, f: KeyFilters): string {
  const scope = ['keys', orgId, statuses.join(','), unusedSince?.toISOString() ?? ''].join('|');
  const filters = [f.workspaceId, f.createdBy, f.environment, f.scope];
  return filters.some((x) => x !== undefined) ? `${scope}|${JSON.stringify(filters.map((x) => x ?? null))}` : scope;
}

/**
 * ListKeys: the organization's keys newest first, by status and filters (AND), in AIP-158 pages.
 * Every reader of the organization may list all of its keys, API keys included: listing never
 * depends on dominance (a key sees what GetKey would show it).
 */
export class KeyListing {
  constructor(private readonly d: KeyListingDeps) {}

  list(ctx: CallContext, input: ListKeysInput): Promise<KeyPage> {
    return this.d.audit.around(ctx, 'key.list', null, false, async () => {
      authorize(ctx, 'read');
      const pageSize = normalizePageSize(input.pageSize);
      const unusedSince = validateOptionalTime(input.unusedSince, 'unused_since');
      const filters = validateKeyFilters(input);
      const statuses: KeyStatus[] = ['active'];
      if (input.includeArchived) statuses.push('archived');
      if (input.includeRevoked) statuses.push('revoked');
      const scope = tokenScope(ctx.orgId, statuses, unusedSince, filters);
      const pos = positionFromToken(input.pageToken, scope, this.d.pageTokenKey);
      const after = pos && { createdAt: new Date(pos.t), id: pos.id };
      const query = { orgId: ctx.orgId, statuses, filters };
      if (!unusedSince) {
        // One extra row tells whether another page exists without a count query.
        const rows = await this.d.keys.list({ ...query, after, limit: pageSize + 1 });
        const page = toPage(rows, pageSize, (k) => ({ t: k.created_at.getTime(), id: k._id }), scope, this.d.pageTokenKey);
        return { keys: page.items, nextPageToken: page.nextPageToken };
      }
      return this.listUnused(query, unusedSince, after, pageSize, (p) =>
        encodePageToken({ t: p.createdAt.getTime(), id: p.id }, scope, this.d.pageTokenKey),
      );
    });
  }

  /**
   * Keys not used since a time. Usage lives apart from the keys, so this filters pages of the
   * org's keys in index order and reads at most UNUSED_SCAN_PAGES pages per call; a call that
   * runs out of budget answers what it found with a token to continue (AIP-158 allows short pages).
   */
  private async listUnused(
    query: { orgId: string; statuses: KeyStatus[]; filters: KeyFilters },
    since: Date,
    start: Position | undefined,
    pageSize: number,
    tokenFor: (after: Position) => string,
  ): Promise<KeyPage> {
    const found: StoredKey[] = [];
    let after = start;
    for (let scanned = 1; ; scanned++) {
      const rows = await this.d.keys.list({ ...query, after, limit: pageSize });
      for (const k of rows) {
        if (k.last_used_at && k.last_used_at >= since) continue;
        found.push(k);
        if (found.length === pageSize) return { keys: found, nextPageToken: tokenFor({ createdAt: k.created_at, id: k._id }) };
      }
      if (rows.length < pageSize) return { keys: found, nextPageToken: '' };
      const last = rows[rows.length - 1];
      after = { createdAt: last.created_at, id: last._id };
      // Budget spent: continue after the last key read, whether or not it matched.
      if (scanned === UNUSED_SCAN_PAGES) return { keys: found, nextPageToken: tokenFor(after) };
    }
  }
}
