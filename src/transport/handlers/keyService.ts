import type { AuditEvent } from '../../gen/apikeys/v1/audit';
import type { KeyServiceServer } from '../../gen/apikeys/v1/key_service';
import type { AuditLog } from '../../domain/audit';
import type { KeyImporter } from '../../domain/keyImport';
import type { KeyManager } from '../../domain/keys';
import type { LeakResponse } from '../../domain/leakResponse';
import type { Organizations } from '../../domain/organizations';
import type { KeyUsageReader } from '../../domain/keyUsage';
import type { Logger } from '../../logging/logger';
import type { AuditEntry } from '../../domain/model';
import type { CallContext } from '../../domain/principal';
import { toProtoKey } from '../keyMapping';
import { inCallScope } from '../callScope';
import { organizationAndLeakHandlers } from './organizationsAndLeaks';
import { importKeysHandlers } from './importKeys';
import { keyUsageHandlers, type Handle } from './keyUsage';
import { unary } from './unary';

function toProtoEvent(e: AuditEntry): AuditEvent {
  return {
    id: e._id,
    orgId: e.org_id,
    actor: e.actor,
    actingAs: e.acting_as ?? '',
    action: e.action,
    keyId: e.key_id ?? '',
    time: e.time,
    requestId: e.request_id,
    outcome: e.outcome,
    method: e.method,
    details: e.details ?? {},
  };
}

/** The services behind the organization and leaked-key RPCs. */
export interface OrganizationAndLeakServices {
  organizations: Organizations;
  leaks: LeakResponse;
}

/** What KeyService's handlers call. */
export interface KeyServiceDeps {
  keys: KeyManager;
  audit: AuditLog;
  orgLeak: OrganizationAndLeakServices;
  importer: KeyImporter;
  keyUsage: KeyUsageReader;
  logger: Logger;
  now: () => Date;
}

/** Thin: decode the request, call the domain, map the result. Errors are mapped by `unary`. */
export function keyServiceHandlers({ keys, audit, orgLeak, importer, keyUsage: usage, logger, now }: KeyServiceDeps): KeyServiceServer {
  const key = (doc: Parameters<typeof toProtoKey>[0]) => toProtoKey(doc, now());
  // Storage bounds each query by the call's deadline and stops when the client has gone.
  const handle: Handle = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>) =>
    unary<Req, Res>(logger, (req, ctx) => inCallScope(ctx, () => fn(req, ctx)));
  return {
    ...organizationAndLeakHandlers(orgLeak.organizations, orgLeak.leaks, handle, key),
    createKey: handle(async (req, ctx) => {
      const created = await keys.create(ctx, {
        name: req.name,
        scopes: req.scopes,
        environment: req.environment,
        expireTime: req.expireTime,
        metadata: req.metadata,
        workspaceId: req.workspaceId,
        allowSelfRevoke: req.allowSelfRevoke,
        recoverable: req.recoverable,
        requestId: req.requestId,
        rateLimit: req.rateLimit,
      });
      return { key: key(created.key), secret: created.secret };
    }),
    getKey: handle(async (req, ctx) => ({ key: key(await keys.get(ctx, req.id)) })),
    listKeys: handle(async (req, ctx) => {
      const page = await keys.list(ctx, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeRevoked: req.includeRevoked,
        includeArchived: req.includeArchived,
        unusedSince: req.unusedSince,
        workspaceId: req.workspaceId,
        createdBy: req.createdBy,
        environment: req.environment,
        scope: req.scope,
      });
      return { keys: page.keys.map(key), nextPageToken: page.nextPageToken };
    }),
    updateKey: handle(async (req, ctx) => {
      const k = req.key;
      const input = {
        name: k?.name ?? '',
        scopes: k?.scopes ?? [],
        metadata: k?.metadata ?? {},
        expireTime: k?.expireTime,
        rateLimit: k?.rateLimit,
      };
      return { key: key(await keys.update(ctx, k?.id ?? '', input, req.updateMask ?? [], k?.etag ?? '')) };
    }),
    revokeKey: handle(async (req, ctx) => ({ key: key(await keys.revoke(ctx, req.id, req.comment)) })),
    archiveKey: handle(async (req, ctx) => ({ key: key(await keys.archive(ctx, req.id)) })),
    reactivateKey: handle(async (req, ctx) => ({ key: key(await keys.reactivate(ctx, req.id)) })),
    deleteKey: handle(async (req, ctx) => {
      await keys.delete(ctx, req.id);
      return {};
    }),
    rotateKey: handle(async (req, ctx) => {
      const r = await keys.rotate(ctx, req.id, req.overlap);
      return { key: key(r.key), secret: r.secret, previousKey: key(r.previous) };
    }),
    getKeySecret: handle(async (req, ctx) => ({ id: req.id, secret: await keys.getSecret(ctx, req.id) })),
    listAuditEvents: handle(async (req, ctx) => {
      const page = await audit.list(ctx, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        action: req.action,
        keyId: req.keyId,
        startTime: req.startTime,
        endTime: req.endTime,
      });
      return { events: page.events.map(toProtoEvent), nextPageToken: page.nextPageToken };
    }),
    ...importKeysHandlers(importer, handle, key),
    ...keyUsageHandlers(usage, handle),
  };
}
