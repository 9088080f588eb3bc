import type { handleUnaryCall } from '@grpc/grpc-js';
import type { ImportedKey, ImportKeysRequest, ImportKeysResponse, KeyServiceServer } from '../../gen/apikeys/v1/key_service';
import type { ImportedKeyInput } from '../../domain/importValidation';
import type { KeyImporter } from '../../domain/keyImport';
import type { StoredKey } from '../../domain/model';
import type { CallContext } from '../../domain/principal';
import type { Key } from '../../gen/apikeys/v1/key';
import { toRpcStatus } from '../errors';

/** How keyServiceHandlers builds a unary handler (call scope, error mapping). */
export type Handle = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>) => handleUnaryCall<Req, Res>;

function importedKeyInput(k: ImportedKey): ImportedKeyInput {
  const s = k.secretOrHash;
  return {
    secret: s?.$case === 'secret' ? s.value : undefined,
    secretSha256: s?.$case === 'secretSha256' ? s.value : undefined,
    format: k.format,
    name: k.name,
    scopes: k.scopes,
    environment: k.environment,
    expireTime: k.expireTime,
    metadata: k.metadata,
    workspaceId: k.workspaceId,
    rateLimit: k.rateLimit,
    createTime: k.createTime,
    lastUsedTime: k.lastUsedTime,
    start: k.start,
  };
}

/** ImportKeys: each entry's key, or its refusal as a google.rpc.Status built by the error module. */
export function importKeysHandlers(
  importer: KeyImporter,
  handle: Handle,
  key: (doc: StoredKey) => Key,
): Pick<KeyServiceServer, 'importKeys'> {
  return {
    importKeys: handle<ImportKeysRequest, ImportKeysResponse>(async (req, ctx) => {
      const outcomes = await importer.import(ctx, req.keys.map(importedKeyInput));
      return {
        results: outcomes.map((o) =>
          'key' in o ? { result: { $case: 'key', value: key(o.key) } } : { result: { $case: 'error', value: toRpcStatus(o.error) } },
        ),
      };
    }),
  };
}
