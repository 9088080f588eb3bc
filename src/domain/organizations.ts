import type { AuditLog } from './audit';
import { authorizeBackoffice } from './authorization';
import type { CallContext } from './principal';
import type { Clock, OrganizationLimits, SlotCount } from './ports';
import { Violations } from './validation';

/** An organization as GetOrganization shows it. */
export interface OrganizationView {
  id: string;
  keyLimit: number;
  /** Whether keyLimit is the organization's own (false: the deployment default). */
  keyLimitSet: boolean;
  /** Places held under the cap: its live keys. */
  activeKeys: number;
  /** keyLimit − activeKeys; 0 when the limit was lowered below the count. */
  freePlaces: number;
}

export interface OrganizationsDeps {
  limits: OrganizationLimits;
  slots: SlotCount;
  audit: AuditLog;
  now: Clock;
  /** ORG_KEY_LIMIT: the cap of an organization without its own. */
  defaultKeyLimit: number;
}

/** Highest key limit staff may set: far above any plan, low enough to catch a slip of the keyboard. */
export const KEY_LIMIT_MAX = 1_000_000;

/**
 * The effective organization's cap on live keys. Setting it never touches keys: a limit below
 * the current count only refuses new places (CreateKey, ReactivateKey: PLAN_LIMIT_REACHED)
 * until enough keys end.
 */
export class Organizations {
  constructor(private readonly d: OrganizationsDeps) {}

  get(ctx: CallContext): Promise<OrganizationView> {
    return this.d.audit.around(ctx, 'organization.get', null, false, async () => {
      authorizeBackoffice(ctx, 'organization.read');
      return this.view(ctx.orgId);
    });
  }

  async setKeyLimit(ctx: CallContext, keyLimit: number): Promise<OrganizationView> {
    const { org } = await this.d.audit.around(
      ctx,
      'organization.key_limit.set',
      null,
      true,
      async () => {
        authorizeBackoffice(ctx, 'organization.limit');
        validateKeyLimit(keyLimit);
        const previous = await this.d.limits.setKeyLimit(ctx.orgId, keyLimit, this.d.now());
        return { org: await this.view(ctx.orgId), previous };
      },
      // The old value as it applied: the organization's own, or the default it had.
      ({ org, previous }) => ({
        old_key_limit: String(previous ?? this.d.defaultKeyLimit),
        old_key_limit_set: String(previous !== null),
        key_limit: String(org.keyLimit),
      }),
    );
    return org;
  }

  private async view(orgId: string): Promise<OrganizationView> {
    const [own, activeKeys] = await Promise.all([this.d.limits.ownKeyLimit(orgId), this.d.slots.held(orgId)]);
    const keyLimit = own ?? this.d.defaultKeyLimit;
    return { id: orgId, keyLimit, keyLimitSet: own !== null, activeKeys, freePlaces: Math.max(0, keyLimit - activeKeys) };
  }
}

function validateKeyLimit(keyLimit: number): void {
  const v = new Violations();
  if (!Number.isInteger(keyLimit) || keyLimit < 1 || keyLimit > KEY_LIMIT_MAX) {
    v.add('key_limit', 'INVALID_ARGUMENT', `key_limit must be 1 to ${KEY_LIMIT_MAX}`);
  }
  v.throwIfAny();
}
