import { Server, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyServiceService } from '../gen/apikeys/v1/key_service';
import { VerifyServiceService } from '../gen/apikeys/v1/verify_service';
import type { Authenticator } from '../domain/authentication';
import type { KeyManager } from '../domain/keys';
import type { Verifier } from '../domain/verification';
import type { Logger } from '../logging/logger';
import { keyServiceHandlers } from './handlers/keyService';
import { verifyServiceHandlers } from './handlers/verifyService';
import { authInterceptor } from './interceptor';

export const SERVICE_NAMES = ['apikeys.v1.KeyService', 'apikeys.v1.VerifyService'] as const;

export interface ServerDeps {
  authenticator: Authenticator;
  keys: KeyManager;
  verifier: Verifier;
  logger: Logger;
  now: () => Date;
}

export interface AssembledServer {
  server: Server;
  health: HealthImplementation;
}

/** Reflection serves the descriptor set that `buf build` wrote beside the generated code. */
function reflectionPackage(): protoLoader.PackageDefinition {
  const ours = protoLoader.loadFileDescriptorSetFromBuffer(readFileSync(join(__dirname, '..', 'gen', 'descriptor.binpb')));
  const health = protoLoader.loadSync(healthProtoPath);
  return { ...ours, ...health };
}

const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_metadata_size': 16 * 1024,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
};

export function buildServer(d: ServerDeps): AssembledServer {
  const server = new Server({ ...CHANNEL_OPTIONS, interceptors: [authInterceptor(d.authenticator, d.logger)] });
  server.addService(KeyServiceService, keyServiceHandlers(d.keys, d.logger, d.now));
  server.addService(VerifyServiceService, verifyServiceHandlers(d.verifier, d.logger));
  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, 'NOT_SERVING'])) });
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);
  return { server, health };
}

export function bind(server: Server, addr: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}
