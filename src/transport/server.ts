import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Server, ServerCredentials, type ChannelOptions, type ServerInterceptor } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyServiceService } from '../gen/apikeys/v1/key_service';
import { FileDescriptorSet } from '../gen/google/protobuf/descriptor';
import type { Config } from '../config/config';
import type { Authenticator } from '../domain/authentication';
import type { ChangeFeed } from '../domain/changeFeed';
import type { UsageReports } from '../domain/usageReports';
import type { Verifier } from '../domain/verification';
import { routeGrpcLogs } from '../logging/grpcLogs';
import type { Logger } from '../logging/logger';
import type { Metrics } from '../observability/metrics';
import { keyServiceHandlers, type KeyServiceDeps } from './handlers/keyService';
import { verifyService } from './handlers/verifyService';
import { AccessLog, type AccessLogShare } from './interceptors/accessLog';
import { Authentication } from './interceptors/authentication';
import { metadataLimitInterceptor } from './interceptors/metadataLimit';
import { metricsInterceptor } from './interceptors/metrics';
import { exceptOpenServices } from './interceptors/openServices';
import { serviceInterceptor } from './interceptors/serviceCall';
import { installLeanPath, type LeanMethod, type LeanPath } from './leanUnary';
import { withCheckedRequests } from './requestDecoding';

export const SERVICE_NAMES = ['apikeys.v1.KeyService', 'apikeys.v1.VerifyService'] as const;

export interface ServerDeps extends KeyServiceDeps {
  authenticator: Authenticator;
  verifier: Verifier;
  feed: ChangeFeed;
  usageReports: UsageReports;
  limits: TransportLimits;
  accessLog: Config['accessLog'];
  /** Where sampled access-log lines go (batched): `logger` by default. */
  sampledLog?: Logger;
  metrics?: Metrics;
}

/** Message sizes, keepalive and connection limits: the `grpc` part of the configuration. */
export type TransportLimits = Config['grpc'];

export interface AssembledServer {
  server: Server;
  health: HealthImplementation;
  /** What bind() puts on the lean way (leanUnary.ts) when the configuration asks for it. */
  lean: { methods: LeanMethod[]; interceptors: ServerInterceptor[]; limits: TransportLimits };
}

export interface BoundServer {
  port: number;
  lean: LeanPath;
}

/**
 * Reflection serves the descriptor sets `buf build` wrote beside the generated code (ours, plus
 * grpc.health.v1 and grpc.reflection), one entry per file. Not proto-loader's package definitions:
 * their re-encoded descriptors lose well-known-type dependencies, map-entry names and extension
 * scopes, and grpcurl/ghz reject them ("cannot resolve type google.protobuf.Timestamp").
 */
const DESCRIPTOR_SETS = ['descriptor.binpb', 'health.binpb', 'reflection.binpb'];

/** The FileDescriptorProtos of a FileDescriptorSet (`repeated FileDescriptorProto file = 1`), byte for byte. */
function descriptorFiles(set: Uint8Array): Buffer[] {
  const files: Buffer[] = [];
  const reader = new BinaryReader(set);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType);
  }
  return files;
}

/** A descriptor set `buf build` wrote beside the generated code. */
const descriptorSet = (name: string) => readFileSync(join(__dirname, '..', 'gen', name));

function reflectionPackage(): protoLoader.PackageDefinition {
  const files = DESCRIPTOR_SETS.flatMap((name) => descriptorFiles(descriptorSet(name)));
  // @grpc/reflection reads only `fileDescriptorProtos` of each entry, and indexes files by their own names.
  return Object.fromEntries(
    files.map((bytes, i) => [`file${i}`, { fileDescriptorProtos: [bytes] }]),
  ) as unknown as protoLoader.PackageDefinition;
}

/**
 * grpc-js server options. The metadata limit is not among them (grpc-js's server ignores
 * grpc.max_metadata_size): metadataLimitInterceptor enforces it.
 */
function channelOptions(l: TransportLimits): ChannelOptions {
  const o: ChannelOptions = {
    'grpc.max_receive_message_length': l.maxReceiveMessageBytes,
    'grpc.max_send_message_length': l.maxSendMessageBytes,
    'grpc.keepalive_time_ms': l.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': l.keepaliveTimeoutMs,
  };
  if (l.maxConcurrentStreams > 0) o['grpc.max_concurrent_streams'] = l.maxConcurrentStreams;
  if (l.maxConnectionAgeMs > 0) {
    o['grpc.max_connection_age_ms'] = l.maxConnectionAgeMs;
    o['grpc.max_connection_age_grace_ms'] = Math.max(l.keepaliveTimeoutMs, 30_000);
  }
  if (l.maxConnectionIdleMs > 0) o['grpc.max_connection_idle_ms'] = l.maxConnectionIdleMs;
  return o;
}

/**
 * VerifyKey is the hot path, and its results are counted in apikeys_verify_results_total: the
 * access log keeps ACCESS_LOG_VERIFY_SAMPLE_RATE of its successful calls. Every other call, and
 * every failed one, gets its line.
 */
const accessLogShare =
  (a: Config['accessLog']): AccessLogShare =>
  (path) =>
    path.startsWith('/apikeys.v1.VerifyService/') ? a.verifySampleRate : 1;

/**
 * Every call passes these in order on its way in (the first sees the request first), and in
 * reverse on its way out (the first sees the final status last). Hence:
 * - metrics first, so it counts every call, health and reflection included, with the status the
 *   client got, refusals by the others included;
 * - the metadata limit before anything reads metadata;
 * - then, in one part (serviceCall.ts), the access log, the request id and authentication: the
 *   access log sees their refusals, the request id's refusals and the context carry the id, and
 *   authentication hands the context to the handlers.
 * Health and reflection stay open: no access log, request id or authentication.
 */
function interceptors(d: ServerDeps): ServerInterceptor[] {
  const share = accessLogShare(d.accessLog);
  return [
    ...(d.metrics ? [metricsInterceptor(d.metrics)] : []),
    metadataLimitInterceptor(d.limits.maxMetadataBytes, d.metrics),
    exceptOpenServices(
      serviceInterceptor({
        accessLog: new AccessLog(d.logger, share, d.sampledLog),
        // A sampled method's successful calls that are not logged carry no id unless the caller sent one.
        requestIds: (path) => share(path) < 1,
        authentication: new Authentication(d.authenticator, d.logger),
      }),
    ),
  ];
}

export function buildServer(d: ServerDeps): AssembledServer {
  routeGrpcLogs(d.logger);
  const parts = interceptors(d);
  const server = new Server({ ...channelOptions(d.limits), interceptors: parts });
  const ours = FileDescriptorSet.decode(descriptorSet('descriptor.binpb'));
  server.addService(withCheckedRequests(KeyServiceService, ours), keyServiceHandlers(d));
  const verify = verifyService(d);
  const verifyDefinition = withCheckedRequests(verify.definition, ours);
  server.addService(verifyDefinition, verify.handlers);
  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, 'NOT_SERVING'])) });
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);
  const verifyKey = { definition: verifyDefinition.verifyKey, handler: verify.handlers.verifyKey } as LeanMethod;
  return { server, health, lean: { methods: d.limits.leanVerify ? [verifyKey] : [], interceptors: parts, limits: d.limits } };
}

/** Listens on `addr` (plaintext), then puts the lean methods on their way. */
export function bind({ server, lean }: AssembledServer, addr: string): Promise<BoundServer> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(err);
      else
        resolve({
          port,
          lean: installLeanPath(server, lean.methods, lean.interceptors, lean.limits),
        });
    });
  });
}
