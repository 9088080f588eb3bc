// VerifyKey's lean way through HTTP/2 against grpc-js's own: two instances of the service on one
// database, one with GRPC_LEAN_VERIFY on (the default) and one with it off, are sent the same
// raw HTTP/2 exchanges — well-formed, broken, hostile — and must answer each the same way on
// the wire: HTTP status, gRPC status and message, ErrorInfo and violations, response message,
// the headers a client reads. The lean instance must have served the plain ones itself.
import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { decodeStatusDetails } from '../../src/client/statusDetails';
import { Metadata } from '@grpc/grpc-js';
import { VerifyKeyRequest, VerifyKeyResponse } from '../../src/gen/apikeys/v1/verify_service';
import { generateSecret, hashSecret } from '../../src/domain/keyFormat';
import type { KeyLookup } from '../../src/domain/ports';
import { sampleValue, scrape } from '../support/prometheus';
import { until } from '../support/until';
import { startSecondInstance, startTestServer, type TestServer } from '../support/server';

const VERIFY_KEY = '/apikeys.v1.VerifyService/VerifyKey';
/** Lookups of these hashes are slow on both instances: a call waits on storage for a while. */
const slowHashes = new Set<string>();
const slowLookups =
  (lookup: KeyLookup): KeyLookup =>
  async (hash) => {
    if (slowHashes.has(hash)) await new Promise((r) => setTimeout(r, 400));
    return lookup(hash);
  };

let lean: TestServer;
let grpcJs: TestServer;
let secret: string;
let userAuthorization: string;

beforeAll(async () => {
  const env = {
    GRPC_MAX_RECEIVE_MESSAGE_BYTES: '1024',
    GRPC_MAX_METADATA_BYTES: '2048',
    // A sampled success is logged and so gets (and echoes) a generated request id: 1 % of calls, on
    // either instance at random. None is sampled here, so both answer a success alike every time.
    ACCESS_LOG_VERIFY_SAMPLE_RATE: '0',
  };
  lean = await startTestServer('lean_unary', env, { wrapKeyLookup: slowLookups });
  grpcJs = await startSecondInstance(lean, { ...env, GRPC_LEAN_VERIFY: 'off' }, { wrapKeyLookup: slowLookups });
  const admin = await lean.admin();
  userAuthorization = String(admin.metadata.get('authorization')[0]);
  ({ secret } = await lean.clients.keys.createKey({ name: 'lean', scopes: ['read'], metadata: { plan: 'pro' } }, admin.metadata));
});
afterAll(async () => {
  await grpcJs?.stop();
  await lean?.stop();
});

/** What a client sees of one exchange, without what differs between any two calls (dates, ids, ages). */
interface Seen {
  http: number | undefined;
  code?: string;
  message?: string;
  contentType?: string;
  encodings?: string[];
  requestId?: string;
  reason?: string;
  errorMetadata?: Record<string, string>;
  fields?: string[];
  answer?: Partial<VerifyKeyResponse> | string;
  framesReceived: number;
}

interface Exchange {
  headers?: http2.OutgoingHttpHeaders;
  /** Written in this order, each chunk its own write; none: the stream ends with no body. */
  chunks?: Buffer[];
  /** Reset the stream this long after sending, without waiting for the answer. */
  cancelAfterMs?: number;
}

const frame = (message: Uint8Array, compressedFlag = 0, declaredLength = message.length) => {
  const f = Buffer.alloc(5 + message.length);
  f[0] = compressedFlag;
  f.writeUInt32BE(declaredLength, 1);
  Buffer.from(message).copy(f, 5);
  return f;
};
const request = (key: string, requiredScopes: string[] = []) => Buffer.from(VerifyKeyRequest.encode({ key, requiredScopes }).finish());

function exchange(server: TestServer, x: Exchange): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${server.address}`);
    session.on('error', () => undefined);
    const req = session.request({
      ':method': 'POST',
      ':path': VERIFY_KEY,
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${server.verifyToken}`,
      ...x.headers,
    });
    let head: http2.IncomingHttpHeaders = {};
    let tail: http2.IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    req.on('response', (h) => (head = h));
    req.on('trailers', (t: http2.IncomingHttpHeaders) => (tail = t));
    req.on('data', (d: Buffer) => body.push(d));
    req.on('error', reject);
    req.on('close', () => {
      session.close();
      resolve(seen(head, tail, Buffer.concat(body)));
    });
    void (async () => {
      for (const chunk of x.chunks ?? []) {
        req.write(chunk);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (x.cancelAfterMs === undefined) req.end();
      else setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), x.cancelAfterMs);
    })();
  });
}

function seen(head: http2.IncomingHttpHeaders, tail: http2.IncomingHttpHeaders, body: Buffer): Seen {
  const h = { ...head, ...tail };
  const out: Seen = { http: Number(head[':status']), framesReceived: 0 };
  if (h['grpc-status'] !== undefined) out.code = String(h['grpc-status']);
  if (h['grpc-message'] !== undefined) out.message = String(h['grpc-message']);
  if (h['content-type'] !== undefined) out.contentType = h['content-type'];
  out.encodings = [h['grpc-encoding'], h['grpc-accept-encoding']].map(String);
  // An id the server made differs per call: only that there is one compares.
  const id = h['x-request-id'];
  if (id !== undefined) out.requestId = id === knownRequestId ? id : '(generated)';
  const details = h['grpc-status-details-bin'];
  if (typeof details === 'string') {
    const md = new Metadata();
    md.set('grpc-status-details-bin', Buffer.from(details, 'base64'));
    const { errorInfo, badRequest } = decodeStatusDetails({ metadata: md });
    out.reason = errorInfo?.reason;
    const { request_id: _id, ...rest } = errorInfo?.metadata ?? {};
    out.errorMetadata = rest;
    out.fields = badRequest?.fieldViolations.map((v) => `${v.field}:${v.reason}`);
  }
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    const { keyStateAge: _age, ...answer } = VerifyKeyResponse.decode(body.subarray(at + 5, at + 5 + length));
    out.answer = answer;
    out.framesReceived++;
    at += 5 + length;
  }
  return out;
}

const knownRequestId = `lean-${randomBytes(4).toString('hex')}`;

/** Each case: an exchange, and what both must answer (a few fields; the comparison is whole). */
const cases: Array<[string, () => Exchange, Partial<Seen>, boolean]> = [
  ['a valid key', () => ({ chunks: [frame(request(secret, ['read']))] }), { code: '0', framesReceived: 1 }, true],
  [
    'a valid key, the frame split over three writes',
    () => ({
      chunks: (() => {
        const f = frame(request(secret));
        return [f.subarray(0, 3), f.subarray(3, 9), f.subarray(9)];
      })(),
    }),
    { code: '0', framesReceived: 1 },
    true,
  ],
  ['a missing scope', () => ({ chunks: [frame(request(secret, ['admin']))] }), { code: '0', framesReceived: 1 }, true],
  ['a malformed key', () => ({ chunks: [frame(request('sk_live_nope'))] }), { code: '0', framesReceived: 1 }, true],
  [
    'the caller’s x-request-id',
    () => ({ headers: { 'x-request-id': knownRequestId }, chunks: [frame(request(secret))] }),
    { code: '0', requestId: knownRequestId },
    true,
  ],
  [
    'an x-request-id with a space',
    () => ({ headers: { 'x-request-id': 'a b' }, chunks: [frame(request(secret))] }),
    { code: String(status.INVALID_ARGUMENT) },
    true,
  ],
  [
    'no authorization',
    () => ({ headers: { authorization: undefined }, chunks: [frame(request(secret))] }),
    { code: String(status.UNAUTHENTICATED) },
    true,
  ],
  [
    'a wrong service token',
    () => ({ headers: { authorization: 'Bearer vt_wrong' }, chunks: [frame(request(secret))] }),
    { code: String(status.UNAUTHENTICATED) },
    true,
  ],
  [
    'a user token',
    () => ({ headers: { authorization: userAuthorization }, chunks: [frame(request(secret))] }),
    { code: String(status.PERMISSION_DENIED) },
    true,
  ],
  [
    'bytes that are no VerifyKeyRequest',
    () => ({ chunks: [frame(Buffer.from([0xff, 0xff, 0xff]))] }),
    { code: String(status.INVALID_ARGUMENT), reason: 'MALFORMED_REQUEST' },
    true,
  ],
  ['no message at all', () => ({ chunks: [] }), { code: String(status.UNIMPLEMENTED) }, true],
  [
    'two messages',
    () => ({ chunks: [Buffer.concat([frame(request(secret)), frame(request(secret))])] }),
    { code: String(status.UNIMPLEMENTED) },
    true,
  ],
  [
    'a thousand messages in one write',
    () => ({ chunks: [Buffer.concat(Array.from({ length: 1000 }, () => frame(request('x'))))] }),
    { code: String(status.UNIMPLEMENTED) },
    true,
  ],
  ['a frame cut short', () => ({ chunks: [frame(request(secret)).subarray(0, 12)] }), { code: String(status.UNIMPLEMENTED) }, true],
  [
    'a message over the receive limit',
    () => ({ chunks: [frame(Buffer.alloc(2000, 0x20))] }),
    { code: String(status.RESOURCE_EXHAUSTED) },
    true,
  ],
  [
    'a length prefix over the limit, in pieces',
    () => ({ chunks: [frame(Buffer.alloc(0), 0, 5000), Buffer.alloc(100)] }),
    { code: String(status.RESOURCE_EXHAUSTED) },
    true,
  ],
  ['the compressed flag without grpc-encoding', () => ({ chunks: [frame(request(secret), 1)] }), { code: '0', framesReceived: 1 }, true],
  [
    'metadata over the limit',
    () => ({ headers: { 'x-padding': 'p'.repeat(3000) }, chunks: [frame(request(secret))] }),
    { code: String(status.INVALID_ARGUMENT) },
    true,
  ],
  [
    'an invalid grpc-timeout',
    () => ({ headers: { 'grpc-timeout': 'soon' }, chunks: [frame(request(secret))] }),
    { code: String(status.INTERNAL) },
    true,
  ],
  [
    'a deadline shorter than the storage read',
    () => ({ headers: { 'grpc-timeout': '100m' }, chunks: [frame(request(slowSecret()))] }),
    { code: String(status.DEADLINE_EXCEEDED) },
    true,
  ],
  [
    'gzip-compressed (grpc-js’s way)',
    () => ({ headers: { 'grpc-encoding': 'gzip' }, chunks: [frame(gzipSync(request(secret)), 1)] }),
    { code: '0', framesReceived: 1 },
    false,
  ],
  [
    'another content type (grpc-js’s way)',
    () => ({ headers: { 'content-type': 'application/json' }, chunks: [frame(request(secret))] }),
    { http: 415 },
    false,
  ],
];

/** A new well-formed secret no key has, whose lookup is slow (and not cached on either instance). */
function slowSecret(): string {
  const unknown = generateSecret(lean.config.keyPrefix, 'live');
  slowHashes.add(hashSecret(unknown));
  return unknown;
}

describe('VerifyKey: the lean way answers as grpc-js does', () => {
  it('is on by default, and off when GRPC_LEAN_VERIFY=off', () => {
    expect(lean.app.lean.active).toBe(true);
    expect(grpcJs.app.lean.active).toBe(false);
  });

  it.each(cases)('%s', async (_name, make, expected, servedLean) => {
    const before = lean.app.lean.served;
    const a = await exchange(lean, make());
    const b = await exchange(grpcJs, make());
    expect(a).toEqual(b);
    expect(a).toMatchObject(expected);
    expect(lean.app.lean.served - before).toBe(servedLean ? 1 : 0);
  });

  it('a call the client cancels while its key is read is counted CANCELLED, and the server goes on', async () => {
    const cancelled = async (s: TestServer) =>
      sampleValue(await scrape(s.app.metricsPort!), 'grpc_server_handled_total', {
        grpc_method: 'VerifyKey',
        grpc_code: 'CANCELLED',
      }) ?? 0;
    for (const s of [lean, grpcJs]) {
      const before = await cancelled(s);
      const a = await exchange(s, { chunks: [frame(request(slowSecret()))], cancelAfterMs: 100 });
      expect(a).toMatchObject({ http: NaN, framesReceived: 0 });
      await until('the cancelled call is counted', async () => (await cancelled(s)) === before + 1);
      expect(await exchange(s, { chunks: [frame(request(secret))] })).toMatchObject({ code: '0', framesReceived: 1 });
    }
  });
});
