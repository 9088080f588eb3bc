import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { DomainError, validationError, type FieldViolation } from '../domain/errors';
import { durationProblem, timestampProblem } from '../domain/validation';
import { FieldDescriptorProto_Type, type DescriptorProto, type FileDescriptorSet } from '../gen/google/protobuf/descriptor';

/**
 * Request decoding that fails like every other bad input. The generated decoders turn each
 * google.protobuf.Timestamp into a Date on the way: nanos are folded into the milliseconds
 * (2e9 nanos silently become two more seconds), and seconds beyond 2^53 throw. A throwing
 * deserializer makes grpc-js answer INTERNAL itself, past the interceptors: no ErrorInfo, no
 * x-request-id. So every Timestamp and Duration is checked on the wire first, and a request that
 * cannot be decoded becomes a refusal the handler answers through the error module.
 */

/** A well-known type checked from its raw seconds/nanos (fields 1 and 2 of both). */
interface WellKnown {
  reason: 'INVALID_TIMESTAMP' | 'INVALID_DURATION';
  problem: (value: { seconds: number; nanos: number }) => string | undefined;
}

/** The fields of a message that are, or contain, a well-known type, by field number. */
interface MessageCheck {
  fields: Map<number, { name: string; check: WellKnown | MessageCheck }>;
}

const WELL_KNOWN: Record<string, WellKnown> = {
  '.google.protobuf.Timestamp': { reason: 'INVALID_TIMESTAMP', problem: timestampProblem },
  '.google.protobuf.Duration': { reason: 'INVALID_DURATION', problem: durationProblem },
};

const REFUSAL = Symbol('refused request');
type Refused = { [REFUSAL]: DomainError };
const refuse = (error: DomainError): Refused => ({ [REFUSAL]: error });

/** The request a handler was given; throws the DomainError when decoding refused it. */
export function decodedRequest<T>(request: T): T {
  const refusal = (request as Partial<Refused>)[REFUSAL];
  if (refusal) throw refusal;
  return request;
}

/** `service` with deserializers that check well-known types first and never throw. */
export function withCheckedRequests<S extends ServiceDefinition>(service: S, descriptors: FileDescriptorSet): S {
  const { inputTypes, messageCheck } = index(descriptors);
  const methods = Object.entries(service).map(([name, method]) => {
    const inputType = inputTypes.get(method.path);
    if (!inputType) throw new Error(`no descriptor for ${method.path}: run npm run generate`);
    const check = messageCheck(inputType);
    const requestDeserialize = (bytes: Buffer): unknown => {
      try {
        if (check) {
          const violations: FieldViolation[] = [];
          collect(bytes, check, '', violations);
          if (violations.length > 0) return refuse(validationError(violations));
        }
        return method.requestDeserialize(bytes);
      } catch {
        const type = inputType.slice(1);
        return refuse(new DomainError('MALFORMED_REQUEST', `the request is not a valid ${type} message`, [], { message_type: type }));
      }
    };
    return [name, { ...method, requestDeserialize }];
  });
  return Object.fromEntries(methods) as S;
}

function index(descriptors: FileDescriptorSet) {
  const messages = new Map<string, DescriptorProto>();
  const inputTypes = new Map<string, string>();
  const addMessages = (scope: string, list: DescriptorProto[]) => {
    for (const m of list) {
      const name = `${scope}.${m.name ?? ''}`;
      messages.set(name, m);
      addMessages(name, m.nestedType);
    }
  };
  for (const file of descriptors.file) {
    const pkg = file.package ? `.${file.package}` : '';
    addMessages(pkg, file.messageType);
    for (const s of file.service) {
      for (const m of s.method) inputTypes.set(`/${pkg.slice(1)}.${s.name ?? ''}/${m.name ?? ''}`, m.inputType ?? '');
    }
  }

  const memo = new Map<string, MessageCheck | undefined>();
  const messageCheck = (typeName: string): MessageCheck | undefined => {
    if (memo.has(typeName)) return memo.get(typeName);
    const check: MessageCheck = { fields: new Map() };
    memo.set(typeName, check); // before its fields: a message type may contain itself
    for (const f of messages.get(typeName)?.field ?? []) {
      const inner =
        f.type !== FieldDescriptorProto_Type.TYPE_MESSAGE ? undefined : (WELL_KNOWN[f.typeName ?? ''] ?? messageCheck(f.typeName ?? ''));
      if (inner) check.fields.set(f.number ?? 0, { name: f.name ?? '', check: inner });
    }
    const result = check.fields.size > 0 ? check : undefined;
    memo.set(typeName, result);
    return result;
  };
  return { inputTypes, messageCheck };
}

/** Every occurrence is checked (a repeated or merged field may occur many times); paths are the proto's field names. */
function collect(bytes: Uint8Array, check: MessageCheck, prefix: string, out: FieldViolation[]): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = check.fields.get(number);
    if (!field || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType, number);
      continue;
    }
    const path = prefix + field.name;
    const value = reader.bytes();
    if ('fields' in field.check) {
      collect(value, field.check, `${path}.`, out);
      continue;
    }
    const problem = field.check.problem(secondsAndNanos(value));
    if (problem) out.push({ field: path, reason: field.check.reason, description: `${path}: ${problem}` });
  }
}

function secondsAndNanos(bytes: Uint8Array): { seconds: number; nanos: number } {
  const reader = new BinaryReader(bytes);
  let seconds = 0;
  let nanos = 0;
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    // Past 2^53 the Number is inexact, but far outside either type's range all the same.
    if (number === 1 && wireType === WireType.Varint) seconds = Number(reader.int64());
    else if (number === 2 && wireType === WireType.Varint) nanos = reader.int32();
    else reader.skip(wireType, number);
  }
  return { seconds, nanos };
}
