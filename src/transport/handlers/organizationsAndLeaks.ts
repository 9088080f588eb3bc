import type { handleUnaryCall } from '@grpc/grpc-js';
import { LeakOutcome, type KeyServiceServer, type Organization } from '../../gen/apikeys/v1/key_service';
import type { Key } from '../../gen/apikeys/v1/key';
import type { LeakOutcomeName, LeakResponse } from '../../domain/leakResponse';
import type { StoredKey } from '../../domain/model';
import type { OrganizationView, Organizations } from '../../domain/organizations';
import type { CallContext } from '../../domain/principal';

/** KeyService's way of making a handler (keyService.ts): errors mapped, storage bound to the call. */
type Handle = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>) => handleUnaryCall<Req, Res>;

const OUTCOME: Record<LeakOutcomeName, LeakOutcome> = {
  REVOKED: LeakOutcome.LEAK_OUTCOME_REVOKED,
  ALREADY_ENDED: LeakOutcome.LEAK_OUTCOME_ALREADY_ENDED,
  UNKNOWN: LeakOutcome.LEAK_OUTCOME_UNKNOWN,
};

const organization = (o: OrganizationView): Organization => ({
  id: o.id,
  keyLimit: o.keyLimit,
  keyLimitSet: o.keyLimitSet,
  activeKeys: o.activeKeys,
  freePlaces: o.freePlaces,
});

/** GetOrganization, SetOrganizationKeyLimit, LookupKey, ReportLeakedKeys: thin, like the rest of KeyService. */
export function organizationAndLeakHandlers(
  organizations: Organizations,
  leaks: LeakResponse,
  handle: Handle,
  key: (doc: StoredKey) => Key,
): Pick<KeyServiceServer, 'getOrganization' | 'setOrganizationKeyLimit' | 'lookupKey' | 'reportLeakedKeys'> {
  return {
    getOrganization: handle(async (_req, ctx) => ({ organization: organization(await organizations.get(ctx)) })),
    setOrganizationKeyLimit: handle(async (req, ctx) => ({
      organization: organization(await organizations.setKeyLimit(ctx, req.keyLimit)),
    })),
    lookupKey: handle(async (req, ctx) => ({ key: key(await leaks.lookup(ctx, req.secret)) })),
    reportLeakedKeys: handle(async (req, ctx) => {
      const report = await leaks.report(ctx, { reporter: req.reporter, secrets: req.secrets });
      return {
        reportId: report.reportId,
        results: report.results.map((r) => ({ outcome: OUTCOME[r.outcome], keyId: r.key?.id ?? '', orgId: r.key?.orgId ?? '' })),
      };
    }),
  };
}
