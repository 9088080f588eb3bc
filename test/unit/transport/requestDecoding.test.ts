import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomainError } from '../../../src/domain/errors';
import { CreateKeyRequest, KeyServiceService } from '../../../src/gen/apikeys/v1/key_service';
import { VerifyServiceService } from '../../../src/gen/apikeys/v1/verify_service';
import { FileDescriptorSet } from '../../../src/gen/google/protobuf/descriptor';
import { decodedRequest, withCheckedRequests } from '../../../src/transport/requestDecoding';
import { message, secondsNanos } from '../../support/wire';

const descriptors = FileDescriptorSet.decode(readFileSync(join(__dirname, '..', '..', '..', 'src', 'gen', 'descriptor.binpb')));
const keys = withCheckedRequests(KeyServiceService, descriptors);
const verify = withCheckedRequests(VerifyServiceService, descriptors);

/** The DomainError a handler would answer with; fails the test when the request decoded. */
function refusal(decoded: unknown): DomainError {
  try {
    decodedRequest(decoded);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error(`expected a refusal, decoded ${JSON.stringify(decoded)}`);
}

const violations = (e: DomainError) => e.fieldViolations.map((v) => `${v.field}:${v.reason}`);
const inAnHour = Math.floor(Date.now() / 1000) + 3600;

describe('withCheckedRequests', () => {
  it('decodes a valid request exactly as the generated decoder does', () => {
    const req = { ...CreateKeyRequest.fromPartial({ name: 'n', scopes: ['read'] }), expireTime: new Date(inAnHour * 1000 + 123) };
    const bytes = Buffer.from(CreateKeyRequest.encode(req).finish());
    expect(decodedRequest(keys.createKey.requestDeserialize(bytes))).toEqual(CreateKeyRequest.decode(bytes));
    expect(decodedRequest(keys.createKey.requestDeserialize(bytes)).expireTime).toEqual(req.expireTime);
  });

  it.each([
    ['seconds 10^12 (year 33658, a valid Date)', secondsNanos(1e12)],
    ['seconds 2^53 (the generated decoder throws)', secondsNanos(2n ** 53n)],
    ['seconds 2^63 - 1', secondsNanos(2n ** 63n - 1n)],
    ['seconds before year 1', secondsNanos(-62_135_596_801)],
    ['nanos 2e9 (the generated decoder folds it into two more seconds)', secondsNanos(inAnHour, 2e9)],
    ['negative nanos', secondsNanos(inAnHour, -1)],
  ])('refuses an expire_time with %s: INVALID_TIMESTAMP on expire_time', (_label, ts) => {
    const e = refusal(keys.createKey.requestDeserialize(message([1, 'n'], [2, 'read'], [4, ts])));
    expect(e.reason).toBe('INVALID_TIMESTAMP');
    expect(violations(e)).toEqual(['expire_time:INVALID_TIMESTAMP']);
  });

  it('finds Timestamps inside nested messages, output-only ones included, and names each by its path', () => {
    const key = message([1, 'key_x'], [12, secondsNanos(2n ** 60n)], [15, secondsNanos(0, 1e9)]);
    const e = refusal(keys.updateKey.requestDeserialize(message([1, key])));
    expect(violations(e)).toEqual(['key.create_time:INVALID_TIMESTAMP', 'key.expire_time:INVALID_TIMESTAMP']);
  });

  it('checks every occurrence of a field, not only the one the decoder keeps', () => {
    const e = refusal(keys.createKey.requestDeserialize(message([1, 'n'], [4, secondsNanos(1e12)], [4, secondsNanos(inAnHour)])));
    expect(violations(e)).toEqual(['expire_time:INVALID_TIMESTAMP']);
  });

  it.each([
    ['seconds and nanos of opposite signs', secondsNanos(5, -1)],
    ['nanos 2e9', secondsNanos(5, 2e9)],
    ['seconds 2^53', secondsNanos(2n ** 53n)],
    ['seconds past 10 000 years', secondsNanos(315_576_000_001)],
  ])('refuses an overlap with %s: INVALID_DURATION on overlap', (_label, d) => {
    const e = refusal(keys.rotateKey.requestDeserialize(message([1, 'key_x'], [2, d])));
    expect(violations(e)).toEqual(['overlap:INVALID_DURATION']);
  });

  it('leaves a valid but unacceptable overlap to the domain (negative: INVALID_OVERLAP there)', () => {
    expect(decodedRequest(keys.rotateKey.requestDeserialize(message([1, 'key_x'], [2, secondsNanos(-5)])))).toMatchObject({
      overlap: { seconds: -5, nanos: 0 },
    });
  });

  it('checks unused_since and the audit time range', () => {
    const unused = refusal(keys.listKeys.requestDeserialize(message([5, secondsNanos(2n ** 53n)])));
    expect(violations(unused)).toEqual(['unused_since:INVALID_TIMESTAMP']);
    const e = refusal(keys.listAuditEvents.requestDeserialize(message([5, secondsNanos(0, -1)], [6, secondsNanos(inAnHour)])));
    expect(violations(e)).toEqual(['start_time:INVALID_TIMESTAMP']);
  });

  it.each([
    ['a string cut short', Buffer.from([0x0a, 0x05, 0x61])],
    ['a length of 255 with one byte behind it', Buffer.from([0x12, 0xff, 0x01, 0x61])],
    ['wire type 7', Buffer.from([0x0f])],
  ])('refuses %s as MALFORMED_REQUEST, naming the message type', (_label, bytes) => {
    for (const [method, type] of [
      [keys.createKey, 'apikeys.v1.CreateKeyRequest'],
      [verify.verifyKey, 'apikeys.v1.VerifyKeyRequest'],
    ] as const) {
      const e = refusal(method.requestDeserialize(bytes));
      expect(e).toMatchObject({ reason: 'MALFORMED_REQUEST', metadata: { message_type: type } });
    }
  });

  it('refuses a Timestamp cut short as MALFORMED_REQUEST', () => {
    const e = refusal(keys.createKey.requestDeserialize(message([1, 'n'], [4, secondsNanos(inAnHour).subarray(0, 2)])));
    expect(e.reason).toBe('MALFORMED_REQUEST');
  });

  it('refuses to wrap a service the descriptors do not describe', () => {
    const foreign = { ping: { ...KeyServiceService.getKey, path: '/other.v1.Pinger/Ping' } };
    expect(() => withCheckedRequests(foreign, descriptors)).toThrow('/other.v1.Pinger/Ping');
  });
});
