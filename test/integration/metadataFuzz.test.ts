// Hostile metadata — random, oversized, binary and repeated values of authorization,
// x-api-key, x-organization-id and x-request-id — never crashes the server and is always
// answered with UNAUTHENTICATED, PERMISSION_DENIED or INVALID_ARGUMENT and a caller reason.
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  status,
  type ChannelCredentials,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { GetKeyRequest, ListKeysRequest } from '../../src/gen/apikeys/v1/key_service';
import { VerifyKeyRequest } from '../../src/gen/apikeys/v1/verify_service';
import { failure, type Failure } from '../support/calls';
import { rawConnection } from '../support/rawGrpc';
import { startTestServer, type TestServer } from '../support/server';

const HEADERS = ['authorization', 'x-api-key', 'x-organization-id', 'x-request-id'] as const;
/** Every answer allowed: UNAUTHENTICATED, PERMISSION_DENIED or INVALID_ARGUMENT, with a reason about the caller. */
const ALLOWED = [
  'UNAUTHENTICATED/UNAUTHENTICATED',
  'UNAUTHENTICATED/INVALID_TOKEN',
  'UNAUTHENTICATED/TOKEN_EXPIRED',
  'UNAUTHENTICATED/INVALID_API_KEY',
  'PERMISSION_DENIED/ACTING_AS_FORBIDDEN',
  'INVALID_ARGUMENT/INVALID_ORGANIZATION_ID',
  'INVALID_ARGUMENT/INVALID_REQUEST_ID_HEADER',
];
const answer = (f: { code: number; reason?: string }) => `${status[f.code]}/${f.reason ?? '-'}`;

let s: TestServer;
let home: string;
let admin: Metadata;
/** Values that are almost right: the kind of input that reaches the deepest checks. */
let nearMisses: string[];

beforeAll(async () => {
  // Hostile credentials arrive many times a second from one address: the guard against guessing
  // keys (tested in authFailures.test.ts) must not answer in place of the checks under test.
  s = await startTestServer('fuzz', { AUTH_FAILURE_LIMIT: '1000000000' });
  ({ orgId: home, metadata: admin } = await s.admin());
  const { key, secret } = await s.clients.keys.createKey({ name: 'fuzz', scopes: ['read'] }, admin);
  await s.clients.keys.revokeKey({ id: key!.id }, admin);
  await s.clients.keys.createKey({ name: 'stays', scopes: ['read'] }, admin);
  const jwt = await s.userToken({ orgId: home });
  const expired = await s.userToken({ orgId: home }, Math.floor(Date.now() / 1000) - 5);
  const unknownKey = generateSecret('sk', 'live');
  const flip = (t: string) => t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A');
  nearMisses = [
    '',
    ' ',
    'Bearer',
    'Bearer ',
    'bearer  x',
    'Basic Zm9vOmJhcg==',
    `Bearer ${flip(jwt)}`,
    `Bearer ${expired}`,
    `Bearer ${jwt.split('.').slice(0, 2).join('.')}.`,
    'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfMSJ9.', // alg "none"
    secret,
    `Bearer ${secret}`, // revoked
    unknownKey,
    `Bearer ${unknownKey}`,
    flip(unknownKey),
    `Bearer ${flip(unknownKey)}`,
    `Bearer ${flip(s.verifyToken)}`,
    `Bearer ${s.verifyToken} `,
    home,
    newId('org'),
    `${home} `,
    home.toUpperCase(),
    'org_',
    `org_${'z'.repeat(27)}`,
    'req-1',
    newId('key'),
    '$where',
    '{"$gt":""}',
    '../../etc/passwd',
    '%00',
    '\\u0000',
  ];
});
afterAll(() => s.stop());

// Printable ASCII only: grpc-js clients refuse anything else in a non-binary value (the raw
// HTTP/2 test below sends the rest).
const ascii = (maxLength: number) => fc.string({ maxLength });
const valueArb = () =>
  fc.oneof(
    { weight: 4, arbitrary: ascii(40) },
    { weight: 3, arbitrary: ascii(60).map((t) => `Bearer ${t}`) },
    { weight: 4, arbitrary: fc.constantFrom(...nearMisses) },
    // Oversized: 1–4 KB each (the whole metadata is kept under the 16 KB limit, see fc.pre).
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 1024, max: 4096 }))
        .map(([t, n]) => t.repeat(n).slice(0, n)),
    },
  );
const BIN_KEYS = HEADERS.map((h) => `${h}-bin`);

type Rpc = 'GetKey' | 'ListKeys' | 'CreateKey' | 'RevokeKey' | 'VerifyKey';
function callRpc(rpc: Rpc, md: Metadata): Promise<unknown> {
  const k = s.clients.keys;
  switch (rpc) {
    case 'GetKey':
      return k.getKey({ id: newId('key') }, md);
    case 'ListKeys':
      return k.listKeys({}, md);
    case 'CreateKey':
      return k.createKey({ name: 'fuzzed', scopes: ['read'] }, md);
    case 'RevokeKey':
      return k.revokeKey({ id: newId('key') }, md);
    case 'VerifyKey':
      return s.clients.verify.verifyKey({ key: generateSecret('sk', 'live') }, md);
  }
}

function healthCheck(): Promise<string> {
  type HealthClient = Client & { check(req: object, cb: (e: ServiceError | null, r?: { status: string }) => void): void };
  const pkg = loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ChannelCredentials) => HealthClient } } };
  };
  const Health = pkg.grpc.health.v1.Health;
  const client = new Health(s.address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.check({ service: '' }, (e, r) => {
      client.close();
      if (e) reject(e);
      else resolve(r!.status);
    }),
  );
}

/** After a fuzz run: the server still serves, and nothing it did was an unexpected error. */
async function assertStillHealthy() {
  expect(await healthCheck()).toBe('SERVING');
  expect((await s.clients.keys.listKeys({}, admin)).keys.length).toBeGreaterThan(0);
  const unexpected = s.logs.filter((l) => /"msg":"unexpected error"/.test(l));
  expect(unexpected).toEqual([]);
}

/** RFC 9113 §8.2.1: Node's HTTP/2 drops field values that start or end with whitespace. */
const arrives = (v: string) => v === v.trim();

const rpcArb = fc.constantFrom<Rpc>('GetKey', 'ListKeys', 'CreateKey', 'RevokeKey', 'VerifyKey');

describe('metadata fuzz', () => {
  it('grpc-js client: random, oversized, -bin and repeated values are refused with a caller reason', async () => {
    const memberToken = await s.userToken({ orgId: home, role: 'member' });
    const accessLines = () => s.logs.filter((l) => l.includes('"msg":"rpc"')).length;
    const before = accessLines();
    let runs = 0;
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        rpcArb,
        // "member": a real, valid user token plus an x-organization-id it may not send.
        fc.constantFrom('garbage', 'member'),
        fc.tuple(
          fc.array(valueArb(), { maxLength: 1 }), // grpc-js sends at most one authorization
          fc.array(valueArb(), { maxLength: 3 }),
          fc.array(valueArb(), { maxLength: 3 }),
          fc.array(valueArb(), { maxLength: 3 }),
        ),
        fc.array(fc.tuple(fc.constantFrom(...BIN_KEYS), fc.uint8Array({ maxLength: 1024 })), { maxLength: 3 }),
        async (rpc, who, [auth, apiKey, org, requestId], bin) => {
          const md = new Metadata();
          const values: Record<string, string[]> = {
            authorization: auth,
            'x-api-key': apiKey,
            'x-organization-id': org,
            'x-request-id': requestId,
          };
          if (who === 'member') {
            values.authorization = [`Bearer ${memberToken}`];
            // HTTP/2 drops a value with leading or trailing whitespace before the server sees
            // it (pinned below); the member must send at least one header that arrives.
            if (!org.some(arrives)) values['x-organization-id'] = [...org, home];
          }
          for (const h of HEADERS) for (const v of values[h]) md.add(h, v);
          for (const [k, v] of bin) md.add(k, Buffer.from(v));
          // Stay under the 16 KB metadata limit (a different refusal, tested in transportLimits).
          fc.pre(JSON.stringify(md.toHttp2Headers()).length <= 12 * 1024);
          const f: Failure = await failure(callRpc(rpc, md));
          runs++;
          seen.add(answer(f));
          expect(f.domain).toBe('apikeys.v1');
          expect(ALLOWED).toContain(answer(f));
        },
      ),
      {
        numRuns: 150,
        // Run first: a clean member call with a well-formed x-organization-id reaches acting-as.
        examples: [['ListKeys', 'member', [[], [], [newId('org')], ['req-1']], []]],
      },
    );
    // One access-log line per call, and the fuzz reached past authentication into acting-as.
    expect(accessLines() - before).toBe(runs);
    expect([...seen]).toEqual(expect.arrayContaining(['UNAUTHENTICATED/UNAUTHENTICATED', 'PERMISSION_DENIED/ACTING_AS_FORBIDDEN']));
    await assertStillHealthy();
  });

  it('raw HTTP/2: latin1 bytes and tabs in the values (which grpc-js drops) are refused just the same', async () => {
    const raw = rawConnection(s.address);
    const unit = fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
      .map((c) => String.fromCharCode(c));
    const latin1 = fc.oneof(
      fc.string({ unit, maxLength: 64 }),
      fc.string({ unit, maxLength: 64 }).map((t) => `Bearer ${t}`),
      fc.constantFrom(...nearMisses).chain((v) => fc.string({ unit, maxLength: 3 }).map((t) => v + t)),
    );
    const paths: Array<[string, Uint8Array]> = [
      ['/apikeys.v1.KeyService/GetKey', GetKeyRequest.encode({ id: newId('key') }).finish()],
      ['/apikeys.v1.KeyService/ListKeys', ListKeysRequest.encode(ListKeysRequest.fromPartial({ pageSize: 1 })).finish()],
      ['/apikeys.v1.VerifyService/VerifyKey', VerifyKeyRequest.encode(VerifyKeyRequest.fromPartial({ key: 'x' })).finish()],
    ];
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...paths),
          fc.option(latin1, { nil: undefined }), // authorization is a single-value header in HTTP/2
          fc.array(latin1, { maxLength: 2 }),
          fc.array(latin1, { maxLength: 2 }),
          fc.array(latin1, { maxLength: 2 }),
          fc.array(fc.tuple(fc.constantFrom(...BIN_KEYS), ascii(64)), { maxLength: 2 }),
          async ([path, body], auth, apiKey, org, requestId, bin) => {
            const headers: Record<string, string | string[]> = {};
            if (auth !== undefined) headers.authorization = auth;
            if (apiKey.length) headers['x-api-key'] = apiKey;
            if (org.length) headers['x-organization-id'] = org;
            if (requestId.length) headers['x-request-id'] = requestId;
            for (const [k, v] of bin) headers[k] = v;
            const r = await raw.call(path, body, headers);
            expect(ALLOWED).toContain(answer(r));
            expect(r.requestId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
          },
        ),
        { numRuns: 100 },
      );
    } finally {
      raw.close();
    }
    await assertStillHealthy();
  });

  it('transport facts the interceptor relies on: padded values never arrive, repeated values arrive joined', async () => {
    const staffOrg = newId('org');
    const staff = (orgHeader: string[]) => {
      const md = new Metadata();
      for (const v of orgHeader) md.add('x-organization-id', v);
      return md;
    };
    const token = `Bearer ${await s.userToken({ orgId: staffOrg, email: 'ops@staff.example', emailVerified: true })}`;
    const withToken = (md: Metadata) => (md.set('authorization', token), md);
    // A padded x-organization-id is dropped on the way: staff then act on their own organization.
    const created = await s.clients.keys.createKey({ name: 'padded', scopes: ['read'] }, withToken(staff([`${home} `])));
    expect(created.key!.orgId).toBe(staffOrg);
    // Two values arrive as one, "a, b": malformed, never "the first one".
    expect(await failure(s.clients.keys.listKeys({}, withToken(staff([home, home]))))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_ORGANIZATION_ID',
    });
  });

  it('far beyond 16 KB of metadata the server refuses with INVALID_ARGUMENT and keeps serving', async () => {
    for (const size of [20_000, 60_000]) {
      const md = bearer('a'.repeat(size), { 'x-request-id': 'b'.repeat(size) });
      md.set('x-api-key', 'c'.repeat(size / 4));
      expect((await failure(s.clients.keys.listKeys({}, md))).code).toBe(status.INVALID_ARGUMENT);
    }
    await assertStillHealthy();
  });
});
