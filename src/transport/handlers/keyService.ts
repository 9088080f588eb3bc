import type { AuditEvent } from '../../gen/apikeys/v1/audit';
import type { KeyServiceServer } from '../../gen/apikeys/v1/key_service';
import type { AuditLog } from '../../domain/audit';
import type { KeyManager } from '../../domain/keys';
import type { Logger } from '../../logging/logger';
import type { AuditEntry } from '../../domain/model';
import { toProtoKey } from '../keyMapping';
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
  };
}

/** Thin: decode the request, call the domain, map the result. Errors are mapped by `unary`. */
export function keyServiceHandlers(keys: KeyManager, audit: AuditLog, logger: Logger, now: () => Date): KeyServiceServer {
  const key = (doc: Parameters<typeof toProtoKey>[0]) => toProtoKey(doc, now());
  return {
    createKey: unary(logger, async (req, ctx) => {
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
    getKey: unary(logger, async (req, ctx) => ({ key: key(await keys.get(ctx, req.id)) })),
    listKeys: unary(logger, async (req, ctx) => {
      const page = await keys.list(ctx, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeRevoked: req.includeRevoked,
        includeArchived: req.includeArchived,
        unusedSince: req.unusedSince,
      });
      return { keys: page.keys.map(key), nextPageToken: page.nextPageToken };
    }),
    updateKey: unary(logger, async (req, ctx) => {
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
    revokeKey: unary(logger, async (req, ctx) => ({ key: key(await keys.revoke(ctx, req.id, req.comment)) })),
    archiveKey: unary(logger, async (req, ctx) => ({ key: key(await keys.archive(ctx, req.id)) })),
    reactivateKey: unary(logger, async (req, ctx) => ({ key: key(await keys.reactivate(ctx, req.id)) })),
    deleteKey: unary(logger, async (req, ctx) => {
      await keys.delete(ctx, req.id);
      return {};
    }),
    rotateKey: unary(logger, async (req, ctx) => {
      const r = await keys.rotate(ctx, req.id, req.overlap);
      return { key: key(r.key), secret: r.secret, previousKey: key(r.previous) };
    }),
    getKeySecret: unary(logger, async (req, ctx) => ({ id: req.id, secret: await keys.getSecret(ctx, req.id) })),
    listAuditEvents: unary(logger, async (req, ctx) => {
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
  };
}
