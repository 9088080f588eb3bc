// One access-log line per call with the caller and the outcome, never a credential;
// x-request-id taken from the caller or generated, and echoed.
import { credentials, Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { bearer } from '../../src/client/promiseClient';
import { mintUserToken } from '../../src/dev/tokens';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { KeyServiceClient, ListKeysRequest } from '../../src/gen/apikeys/v1/key_service';
import { GetKeyRequest } from '../../src/gen/apikeys/v1/key_service';
import { VerifyKeyRequest, VerifyServiceClient } from '../../src/gen/apikeys/v1/verify_service';
import { outcome } from '../support/calls';
import { rawConnection } from '../support/rawGrpc';
import { startTestServer, type TestServer } from '../support/server';

let s: TestServer;
beforeAll(async () => {
  // Every VerifyKey call logged, so each call below has its line (sampling: at the end).
  s = await startTestServer('logs', { ACCESS_LOG_VERIFY_SAMPLE_RATE: '1' });
});
afterAll(() => s.stop());

interface LogLine {
  msg: string;
  level: number;
  component?: string;
  [field: string]: unknown;
}
const parsed = () =>
  s.logs
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogLine);
const accessLines = () => parsed().filter((l) => l.msg === 'rpc');

describe('log capture', () => {
  it('logs one line per call with caller, org and outcome, and no key, token or secret anywhere', async () => {
    const secrets: string[] = [s.verifyToken, s.config.auth.jwtSecret!, s.config.pageTokenSecret!];
    const keep = <T extends string>(secret: T): T => (secrets.push(secret), secret);
    const orgId = newId('org');
    const staffId = newId('usr');
    const adminToken = keep(await s.userToken({ orgId }));
    const admin = bearer(adminToken);
    const staff = bearer(keep(await s.userToken({ sub: staffId, orgId: newId('org'), email: 'ops@staff.example', emailVerified: true })), {
      'x-organization-id': orgId,
    });
    const member = bearer(keep(await s.userToken({ orgId: newId('org'), role: 'member' })), { 'x-organization-id': orgId });
    const expired = bearer(keep(await s.userToken({ orgId }, Math.floor(Date.now() / 1000) - 60)));
    const forged = bearer(keep(await mintUserToken(randomBytes(32).toString('hex'), { sub: newId('usr'), orgId, role: 'admin' })));
    const service = bearer(s.verifyToken);
    const unknownKey = keep(generateSecret('sk', 'test'));
    const bogusServiceToken = keep(`vt_${randomBytes(24).toString('base64url')}`);

    const rw = await s.clients.keys.createKey({ name: 'rw', scopes: ['read', 'write'] }, admin);
    const ro = await s.clients.keys.createKey({ name: 'ro', scopes: ['read'] }, admin);
    keep(rw.secret);
    keep(ro.secret);
    const rwKey = bearer(rw.secret);
    const roKey = new Metadata();
    roKey.set('x-api-key', ro.secret);
    const badRequestId = bearer(adminToken, { 'x-request-id': 'not valid!' });

    const K = '/apikeys.v1.KeyService/';
    const V = '/apikeys.v1.VerifyService/VerifyKey';
    const runs: Array<[() => Promise<unknown>, Record<string, unknown>]> = [
      [() => s.clients.keys.listKeys({}, rwKey), { method: `${K}ListKeys`, callerKind: 'apiKey', callerId: rw.key!.id, orgId, code: 'OK' }],
      [() => s.clients.keys.getKey({ id: rw.key!.id }, roKey), { method: `${K}GetKey`, callerKind: 'apiKey', orgId, code: 'OK' }],
      [
        () => s.clients.keys.createKey({ name: 'x', scopes: ['read'] }, roKey),
        { method: `${K}CreateKey`, callerKind: 'apiKey', orgId, code: 'PERMISSION_DENIED', reason: 'INSUFFICIENT_SCOPE' },
      ],
      [
        () => s.clients.verify.verifyKey({ key: rw.secret }, service),
        { method: V, callerKind: 'service', callerId: 'service:1', code: 'OK' },
      ],
      [() => s.clients.verify.verifyKey({ key: unknownKey }, service), { method: V, callerKind: 'service', code: 'OK' }],
      [() => s.clients.verify.verifyKey({ key: rw.secret }, admin), { method: V, callerKind: 'user', code: 'PERMISSION_DENIED' }],
      [
        () => s.clients.keys.listKeys({}, bearer(bogusServiceToken)),
        { callerKind: 'anonymous', code: 'UNAUTHENTICATED', reason: 'INVALID_TOKEN' },
      ],
      [() => s.clients.keys.listKeys({}, expired), { callerKind: 'anonymous', code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' }],
      [() => s.clients.keys.listKeys({}, forged), { callerKind: 'anonymous', code: 'UNAUTHENTICATED', reason: 'INVALID_TOKEN' }],
      [
        () => s.clients.keys.listKeys({}, bearer(unknownKey)),
        { callerKind: 'anonymous', code: 'UNAUTHENTICATED', reason: 'INVALID_API_KEY' },
      ],
      [
        () => s.clients.keys.listKeys({}, staff),
        { method: `${K}ListKeys`, callerKind: 'user', callerId: staffId, orgId, actingAs: true, code: 'OK' },
      ],
      [() => s.clients.keys.listKeys({}, member), { callerKind: 'user', code: 'PERMISSION_DENIED', reason: 'ACTING_AS_FORBIDDEN' }],
      [() => s.clients.keys.revokeKey({ id: ro.key!.id }, admin), { method: `${K}RevokeKey`, callerKind: 'user', orgId, code: 'OK' }],
      [() => s.clients.keys.listKeys({}, roKey), { callerKind: 'anonymous', code: 'UNAUTHENTICATED', reason: 'INVALID_API_KEY' }],
      [() => s.clients.keys.listKeys({}, badRequestId), { code: 'INVALID_ARGUMENT', reason: 'INVALID_REQUEST_ID_HEADER' }],
    ];
    const before = accessLines().length;
    for (const [run] of runs) await outcome(run());
    // The same credentials in headers grpc-js drops (an "é" makes them illegal): grpc-js logs those.
    const raw = rawConnection(s.address);
    const rawHeaders = [{ authorization: `Bearer ${adminToken}\u00e9` }, { 'x-api-key': `${rw.secret}\u00e9` }];
    for (const headers of rawHeaders) {
      const answer = await raw.call(`${K}GetKey`, GetKeyRequest.encode({ id: rw.key!.id }).finish(), headers);
      expect(answer).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'UNAUTHENTICATED' });
    }
    raw.close();

    const lines = accessLines().slice(before);
    expect(lines).toHaveLength(runs.length + rawHeaders.length);
    runs.forEach(([, expected], i) => expect(lines[i]).toMatchObject(expected));
    // Refused acting-as: the caller is named, but no organization was acted on.
    expect(lines.find((l) => l.reason === 'ACTING_AS_FORBIDDEN')).not.toHaveProperty('orgId');
    for (const line of lines) {
      expect(line.requestId).toEqual(expect.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/));
      expect(line.method).toEqual(expect.stringMatching(/^\/apikeys\.v1\.(Key|Verify)Service\/\w+$/));
      expect(line.durationMs).toEqual(expect.any(Number));
      expect(line.actingAs === true).toBe(line.callerId === staffId);
    }
    // The grpc-js lines about the dropped headers were captured, with the values withheld.
    const grpcLines = parsed().filter((l) => l.component === 'grpc-js');
    expect(grpcLines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'Failed to add metadata entry authorization: [value withheld]',
        'Failed to add metadata entry x-api-key: [value withheld]',
      ]),
    );

    const everything = s.logs.join('');
    for (const secret of secrets) {
      expect(everything).not.toContain(secret);
      // A truncated secret is still a leak: its last 16 characters must not appear either.
      expect(everything).not.toContain(secret.slice(-16));
    }
  });
});

describe('x-request-id', () => {
  /** ListKeys with the raw client, to see response headers and trailers. */
  function listKeys(md: Metadata): Promise<{ header?: string; trailer?: string; code: status }> {
    const client = new KeyServiceClient(s.address, credentials.createInsecure());
    return new Promise((resolve) => {
      let header: string | undefined;
      const call = client.listKeys(ListKeysRequest.fromPartial({}), md, () => undefined);
      call.on('metadata', (m: Metadata) => (header = m.get('x-request-id')[0] as string));
      call.on('status', (st: StatusObject) => {
        client.close();
        resolve({ header, trailer: st.metadata.get('x-request-id')[0] as string | undefined, code: st.code });
      });
    });
  }
  const lineFor = (requestId: string) => accessLines().filter((l) => l.requestId === requestId);

  it('echoes the caller’s id in headers and trailers, and logs under it', async () => {
    const { metadata } = await s.admin();
    metadata.set('x-request-id', 'req-2026.11:abc_1');
    expect(await listKeys(metadata)).toEqual({ header: 'req-2026.11:abc_1', trailer: 'req-2026.11:abc_1', code: status.OK });
    expect(lineFor('req-2026.11:abc_1')).toHaveLength(1);
  });

  it('generates one when none is sent, echoes it and logs under it', async () => {
    const { metadata } = await s.admin();
    const r = await listKeys(metadata);
    expect(r.header).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.trailer).toBe(r.header);
    expect(lineFor(r.header!)).toMatchObject([{ code: 'OK', callerKind: 'user' }]);
  });

  it('echoes it on refused calls too (in the trailers)', async () => {
    const md = new Metadata();
    md.set('x-request-id', 'refused-1');
    expect(await listKeys(md)).toEqual({ header: undefined, trailer: 'refused-1', code: status.UNAUTHENTICATED });
    expect(lineFor('refused-1')).toMatchObject([{ code: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED', callerKind: 'anonymous' }]);
  });

  it('refuses an invalid one with INVALID_ARGUMENT and answers with a generated id instead', async () => {
    const { metadata } = await s.admin();
    metadata.set('x-request-id', 'x'.repeat(129));
    const r = await listKeys(metadata);
    expect(r.code).toBe(status.INVALID_ARGUMENT);
    expect(r.trailer).toMatch(/^[0-9a-f-]{36}$/);
    expect(lineFor(r.trailer!)).toMatchObject([{ reason: 'INVALID_REQUEST_ID_HEADER' }]);
  });
});

describe('access-log sampling (ACCESS_LOG_VERIFY_SAMPLE_RATE)', () => {
  it('at 0 logs no successful VerifyKey, but every failed one and every KeyService call', async () => {
    const quiet = await startTestServer('logs_sampled', { ACCESS_LOG_VERIFY_SAMPLE_RATE: '0' });
    try {
      const lines = () =>
        quiet.logs
          .join('')
          .split('\n')
          .filter((l) => l.includes('"msg":"rpc"'))
          .map((l) => JSON.parse(l) as LogLine);
      const { metadata: admin } = await quiet.admin();
      const { secret } = await quiet.clients.keys.createKey({ name: 'k', scopes: ['read'] }, admin);
      const service = bearer(quiet.verifyToken);
      await quiet.clients.verify.verifyKey({ key: secret }, service);
      await quiet.clients.verify.verifyKey({ key: generateSecret('sk', 'test') }, service);
      await outcome(quiet.clients.verify.verifyKey({ key: secret }, admin));
      await outcome(quiet.clients.verify.verifyKey({ key: secret }, bearer(`vt_${randomBytes(24).toString('base64url')}`)));
      await quiet.clients.keys.listKeys({}, admin);
      expect(lines().map((l) => [l.method, l.code])).toEqual([
        ['/apikeys.v1.KeyService/CreateKey', 'OK'],
        ['/apikeys.v1.VerifyService/VerifyKey', 'PERMISSION_DENIED'],
        ['/apikeys.v1.VerifyService/VerifyKey', 'UNAUTHENTICATED'],
        ['/apikeys.v1.KeyService/ListKeys', 'OK'],
      ]);
    } finally {
      await quiet.stop();
    }
  });

  it('a sampled line is written in a batch, by shutdown at the latest, under the id the call got back in its trailers', async () => {
    const sampled = await startTestServer('logs_batched', { ACCESS_LOG_VERIFY_SAMPLE_RATE: '0.999999999' });
    let trailer: string | undefined;
    try {
      const { metadata: admin } = await sampled.admin();
      const { secret } = await sampled.clients.keys.createKey({ name: 'k', scopes: ['read'] }, admin);
      const client = new VerifyServiceClient(sampled.address, credentials.createInsecure());
      const verify = (md: Metadata) =>
        new Promise<{ header?: string; trailer?: string }>((resolve) => {
          let header: string | undefined;
          const call = client.verifyKey(VerifyKeyRequest.fromPartial({ key: secret }), md, () => undefined);
          call.on('metadata', (m: Metadata) => (header = m.get('x-request-id')[0] as string | undefined));
          call.on('status', (st: StatusObject) => resolve({ header, trailer: st.metadata.get('x-request-id')[0] as string | undefined }));
        });
      ({ trailer } = await verify(bearer(sampled.verifyToken)));
      client.close();
      expect(trailer).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await sampled.stop();
    }
    const verifyLines = sampled.logs
      .filter((l) => l.includes('"msg":"rpc"') && l.includes('VerifyKey'))
      .map((l) => JSON.parse(l) as LogLine);
    expect(verifyLines).toEqual([expect.objectContaining({ code: 'OK', requestId: trailer, sampleRate: 0.999999999 })]);
  });
});
