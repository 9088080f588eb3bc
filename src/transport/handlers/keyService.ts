import type { KeyServiceServer } from '../../gen/apikeys/v1/key_service';
import { DomainError } from '../../domain/errors';
import type { KeyManager } from '../../domain/keys';
import type { Logger } from '../../logging/logger';
import { toProtoKey } from '../keyMapping';
import { unary } from './unary';

const notYet = (rpc: string) => async () => {
  throw new DomainError('NOT_IMPLEMENTED', `${rpc} is not implemented yet`);
};

/** Thin: decode the request, call the domain, map the result. Errors are mapped by `unary`. */
export function keyServiceHandlers(keys: KeyManager, logger: Logger, now: () => Date): KeyServiceServer {
  return {
    createKey: unary(logger, async (req, ctx) => {
      const { key, secret } = await keys.create(ctx, {
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
      return { key: toProtoKey(key, now()), secret };
    }),
    getKey: unary(logger, async (req, ctx) => ({ key: toProtoKey(await keys.get(ctx, req.id), now()) })),
    listKeys: unary(logger, async (req, ctx) => {
      const page = await keys.list(ctx, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        includeRevoked: req.includeRevoked,
        includeArchived: req.includeArchived,
        unusedSince: req.unusedSince,
      });
      const at = now();
      return { keys: page.keys.map((k) => toProtoKey(k, at)), nextPageToken: page.nextPageToken };
    }),
    revokeKey: unary(logger, async (req, ctx) => ({ key: toProtoKey(await keys.revoke(ctx, req.id, req.comment), now()) })),
    updateKey: unary(logger, notYet('UpdateKey')),
    archiveKey: unary(logger, notYet('ArchiveKey')),
    reactivateKey: unary(logger, notYet('ReactivateKey')),
    deleteKey: unary(logger, notYet('DeleteKey')),
    rotateKey: unary(logger, notYet('RotateKey')),
    getKeySecret: unary(logger, notYet('GetKeySecret')),
    listAuditEvents: unary(logger, notYet('ListAuditEvents')),
  };
}
