import { credentials, Metadata, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import * as keySvc from '../gen/apikeys/v1/key_service';
import { ReportUsageRequest, VerifyKeyRequest, VerifyServiceClient, VerifyServiceService } from '../gen/apikeys/v1/verify_service';

/** A promise-returning client over the generated grpc-js clients (keyctl, tests, examples). */

interface MethodDef<Req, Res> {
  path: string;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
}

type DeepPartial<T> = T extends Date | Buffer | Uint8Array | string | number | boolean | undefined
  ? T
  : T extends Array<infer U>
    ? Array<DeepPartial<U>>
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

export type PromiseClient<S> = {
  [K in keyof S]: S[K] extends MethodDef<infer Req, infer Res>
    ? (req: DeepPartial<Req>, metadata?: Metadata, options?: CallOptions) => Promise<Res>
    : never;
};

type Codecs<S> = { [K in keyof S]: { fromPartial(o: never): unknown } };

function promiseClient<S extends Record<string, MethodDef<never, unknown>>>(client: Client, def: S, codecs: Codecs<S>): PromiseClient<S> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(def)) {
    // Types erased per method: the request fromPartial builds is the one this method serialises.
    const m = def[name] as MethodDef<unknown, unknown>;
    out[name] = (req: unknown, metadata = new Metadata(), options: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          m.path,
          m.requestSerialize,
          m.responseDeserialize,
          (codecs[name].fromPartial as (o: unknown) => unknown)(req),
          metadata,
          options,
          (err: ServiceError | null, res?: unknown) => (err ? reject(err) : resolve(res)),
        );
      });
  }
  return out as PromiseClient<S>;
}

const KEY_REQUESTS: Codecs<typeof keySvc.KeyServiceService> = {
  createKey: keySvc.CreateKeyRequest,
  getKey: keySvc.GetKeyRequest,
  listKeys: keySvc.ListKeysRequest,
  updateKey: keySvc.UpdateKeyRequest,
  revokeKey: keySvc.RevokeKeyRequest,
  archiveKey: keySvc.ArchiveKeyRequest,
  reactivateKey: keySvc.ReactivateKeyRequest,
  deleteKey: keySvc.DeleteKeyRequest,
  rotateKey: keySvc.RotateKeyRequest,
  getKeySecret: keySvc.GetKeySecretRequest,
  listAuditEvents: keySvc.ListAuditEventsRequest,
  getOrganization: keySvc.GetOrganizationRequest,
  setOrganizationKeyLimit: keySvc.SetOrganizationKeyLimitRequest,
  getKeyUsage: keySvc.GetKeyUsageRequest,
  lookupKey: keySvc.LookupKeyRequest,
  reportLeakedKeys: keySvc.ReportLeakedKeysRequest,
  importKeys: keySvc.ImportKeysRequest,
};

/** VerifyService's unary methods; WatchKeyChanges is a stream (src/client/keyFeed.ts reads it). */
const VERIFY_UNARY = { verifyKey: VerifyServiceService.verifyKey, reportUsage: VerifyServiceService.reportUsage };

export interface ApiKeysClients {
  keys: PromiseClient<typeof keySvc.KeyServiceService>;
  verify: PromiseClient<typeof VERIFY_UNARY>;
  close(): void;
}

export function connectClients(address: string): ApiKeysClients {
  const keyClient = new keySvc.KeyServiceClient(address, credentials.createInsecure());
  const verifyClient = new VerifyServiceClient(address, credentials.createInsecure());
  return {
    keys: promiseClient(keyClient, keySvc.KeyServiceService, KEY_REQUESTS),
    verify: promiseClient(verifyClient, VERIFY_UNARY, { verifyKey: VerifyKeyRequest, reportUsage: ReportUsageRequest }),
    close() {
      keyClient.close();
      verifyClient.close();
    },
  };
}

/** Metadata carrying a bearer credential (and any extra headers). */
export function bearer(token: string, extra: Record<string, string> = {}): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return md;
}
