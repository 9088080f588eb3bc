// Request bytes the generated client cannot produce, sent over bare HTTP/2 to the real server:
// Timestamps and Durations outside their types' ranges, and bytes that are no protobuf message.
// Each answers INVALID_ARGUMENT with an ErrorInfo reason, the field it is about, and the
// x-request-id echo, like every other bad input; and nothing is stored.
import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { bearer } from '../../src/client/promiseClient';
import { checkHealth } from '../../src/client/health';
import { rawConnection, type RawAnswer } from '../support/rawGrpc';
import { startTestServer, type TestServer } from '../support/server';
import { message, secondsNanos } from '../support/wire';

let s: TestServer;
let raw: ReturnType<typeof rawConnection>;
let admin: { orgId: string; metadata: ReturnType<typeof bearer> };
let authorization: string;

beforeAll(async () => {
  s = await startTestServer('malformed_requests');
  admin = await s.admin();
  authorization = String(admin.metadata.get('authorization')[0]);
  raw = rawConnection(s.address);
});
afterAll(async () => {
  raw.close();
  await s.stop();
});

/** One raw call with a fresh x-request-id, which the answer must echo. */
async function send(path: string, body: Uint8Array, credential = authorization): Promise<RawAnswer> {
  const requestId = `raw-${randomBytes(6).toString('hex')}`;
  const answer = await raw.call(path, body, { authorization: credential, 'x-request-id': requestId });
  expect(answer.requestId).toBe(requestId);
  return answer;
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const uniqueName = () => `raw ${randomBytes(6).toString('hex')}`;
const createKey = (name: string, expireTime: Uint8Array) => message([1, name], [2, 'read'], [4, expireTime]);

describe('Timestamps outside google.protobuf.Timestamp', () => {
  it('a valid expire_time sent the same way is stored (the raw path itself works)', async () => {
    const name = uniqueName();
    expect(await send('/apikeys.v1.KeyService/CreateKey', createKey(name, secondsNanos(inAnHour())))).toMatchObject({ code: status.OK });
    expect(await s.collections.keys.countDocuments({ name })).toBe(1);
  });

  it.each([
    ['seconds 10^12 (year 33658)', () => secondsNanos(1e12)],
    ['seconds 2^53', () => secondsNanos(2n ** 53n)],
    ['nanos 2e9', () => secondsNanos(inAnHour(), 2e9)],
  ])('CreateKey with expire_time %s: INVALID_TIMESTAMP on expire_time, no key', async (_label, expireTime) => {
    const name = uniqueName();
    expect(await send('/apikeys.v1.KeyService/CreateKey', createKey(name, expireTime()))).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_TIMESTAMP',
      fields: ['expire_time:INVALID_TIMESTAMP'],
      requestId: expect.any(String),
    });
    expect(await s.collections.keys.countDocuments({ name })).toBe(0);
  });

  it('UpdateKey with key.expire_time seconds 10^12: INVALID_TIMESTAMP on key.expire_time, the key unchanged', async () => {
    const expireTime = new Date((inAnHour() + 60) * 1000);
    const { key } = await s.clients.keys.createKey({ name: uniqueName(), scopes: ['read'], expireTime }, admin.metadata);
    const body = message([1, message([1, key!.id], [15, secondsNanos(1e12)])], [2, message([1, 'expire_time'])]);
    expect(await send('/apikeys.v1.KeyService/UpdateKey', body)).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_TIMESTAMP',
      fields: ['key.expire_time:INVALID_TIMESTAMP'],
    });
    expect((await s.collections.keys.findOne({ _id: key!.id }))!.expires_at).toEqual(expireTime);
  });

  it.each([
    ['ListKeys', 'unused_since seconds 2^53', message([5, secondsNanos(2n ** 53n)]), 'unused_since:INVALID_TIMESTAMP'],
    ['ListAuditEvents', 'start_time nanos -1', message([5, secondsNanos(0, -1)]), 'start_time:INVALID_TIMESTAMP'],
  ])('%s with %s: INVALID_TIMESTAMP', async (rpc, _label, body, field) => {
    expect(await send(`/apikeys.v1.KeyService/${rpc}`, body)).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_TIMESTAMP',
      fields: [field],
    });
  });
});

describe('RotateKey overlaps that are no google.protobuf.Duration', () => {
  it.each([
    ['seconds and nanos of opposite signs', secondsNanos(5, -1)],
    ['nanos 2e9', secondsNanos(0, 2e9)],
    ['seconds 2^53', secondsNanos(2n ** 53n)],
  ])('%s: INVALID_DURATION on overlap, the key not rotated', async (_label, overlap) => {
    const { key } = await s.clients.keys.createKey({ name: uniqueName(), scopes: ['read'] }, admin.metadata);
    expect(await send('/apikeys.v1.KeyService/RotateKey', message([1, key!.id], [2, overlap]))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_DURATION',
      fields: ['overlap:INVALID_DURATION'],
    });
    expect(await s.collections.keys.findOne({ _id: key!.id })).toMatchObject({ status: 'active', replaced_by: null });
    expect(await s.collections.keys.countDocuments({ rotated_from: key!.id })).toBe(0);
  });
});

describe('bytes that are no protobuf message', () => {
  const garbage = Buffer.from([0x0a, 0x05, 0x61]); // field 1, five bytes announced, one sent

  it('CreateKey: MALFORMED_REQUEST, no key', async () => {
    const before = await s.collections.keys.countDocuments({ org_id: admin.orgId });
    expect(await send('/apikeys.v1.KeyService/CreateKey', garbage)).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'MALFORMED_REQUEST',
      fields: [],
      requestId: expect.any(String),
    });
    expect(await s.collections.keys.countDocuments({ org_id: admin.orgId })).toBe(before);
  });

  it('VerifyKey: MALFORMED_REQUEST', async () => {
    expect(await send('/apikeys.v1.VerifyService/VerifyKey', garbage, `Bearer ${s.verifyToken}`)).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'MALFORMED_REQUEST',
    });
  });

  it('left the server serving, with no unexpected error logged', async () => {
    expect(await checkHealth(s.address)).toBe('SERVING');
    expect(s.logs.filter((l) => /"level":50/.test(l))).toEqual([]);
  });
});
