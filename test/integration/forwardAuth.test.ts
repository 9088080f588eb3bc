// The forward-auth endpoint (HTTP_AUTH_ADDR) called directly, as a proxy would: over real HTTP,
// against the real service and database. The header contract and the statuses are those of
// docs/gateways.md.
import type { Metadata } from '@grpc/grpc-js';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { generateSecret } from '../../src/domain/keyFormat';
import { scrape, sampleValue } from '../support/prometheus';
import { startForwardAuthServer, type ForwardAuthServer } from '../support/forwardAuth';
import { startSecondInstance, type TestServer } from '../support/server';

interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON envelope of a refusal; undefined for an empty body. */
  body?: { error: { code: number; status: string; reason: string; message: string } };
}

describe('forward-auth endpoint', () => {
  let s: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let base: string;
  let endpoint: ForwardAuthServer;

  beforeAll(async () => {
    endpoint = await startForwardAuthServer('forward_auth');
    ({ server: s, base } = endpoint);
    admin = await s.admin();
  });
  afterAll(() => s.stop());

  const create = async (extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes: ['read', 'write'], ...extra }, admin.metadata);

  /** One call as a proxy makes it: the service token plus `headers`. */
  async function authorize(headers: Record<string, string>, init: { method?: string; path?: string; body?: string } = {}): Promise<Answer> {
    const res = await fetch(`${base}${init.path ?? '/authorize'}`, {
      method: init.method ?? 'GET',
      headers: { 'x-service-token': s.verifyToken, ...headers },
      body: init.body,
    });
    const text = await res.text();
    const json = res.headers.get('content-type') === 'application/json';
    return { status: res.status, headers: res.headers, body: json ? (JSON.parse(text) as Answer['body']) : undefined };
  }

  const refusal = (a: Answer) => ({ status: a.status, code: a.body?.error.code, grpc: a.body?.error.status, reason: a.body?.error.reason });

  it('answers 200 for a valid key, with x-key-id, x-org-id and x-key-scopes and no body', async () => {
    const { key, secret } = await create();
    const presented: Record<string, string>[] = [
      { 'x-api-key': secret },
      { authorization: `Bearer ${secret}` },
      { authorization: `bearer ${secret}` },
    ];
    for (const headers of presented) {
      const a = await authorize({ ...headers, 'x-required-scopes': 'read' });
      expect({ status: a.status, body: a.body }).toEqual({ status: 200, body: undefined });
      expect([a.headers.get('x-key-id'), a.headers.get('x-org-id'), a.headers.get('x-key-scopes')]).toEqual([
        key!.id,
        admin.orgId,
        'read,write',
      ]);
      expect([a.headers.get('cache-control'), a.headers.get('content-length')]).toEqual(['no-store', '0']);
    }
  });

  it('answers any method, on /authorize and any path under it; bodies are discarded', async () => {
    const { key, secret } = await create();
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const body = ['POST', 'PUT', 'PATCH'].includes(method) ? JSON.stringify({ big: 'x'.repeat(100_000) }) : undefined;
      const a = await authorize({ 'x-api-key': secret }, { method, path: '/authorize/v1/orders/42?expand=items', body });
      expect([method, a.status, a.headers.get('x-key-id')]).toEqual([method, 200, key!.id]);
    }
    for (const path of ['/authorize', '/authorize/', '/authorize?x=1']) {
      expect((await authorize({ 'x-api-key': secret }, { path })).status).toBe(200);
    }
    for (const path of ['/', '/authorized', '/authorizex/y', '/metrics']) {
      expect([path, (await authorize({ 'x-api-key': secret }, { path })).status]).toEqual([path, 404]);
    }
  });

  it('answers 401 UNAUTHENTICATED, with the JSON envelope, when no key or two keys are sent', async () => {
    const { secret } = await create();
    const missing = await authorize({});
    expect(refusal(missing)).toEqual({ status: 401, code: 401, grpc: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED' });
    expect(missing.body?.error.message).toMatch(/x-api-key/);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const both = await authorize({ 'x-api-key': secret, authorization: `Bearer ${secret}` });
    expect(refusal(both)).toEqual({ status: 401, code: 401, grpc: 'UNAUTHENTICATED', reason: 'UNAUTHENTICATED' });
  });

  it('answers 401 INVALID_API_KEY, with one message, for malformed, unknown, revoked, archived and expired keys', async () => {
    const revoked = await create();
    await s.clients.keys.revokeKey({ id: revoked.key!.id }, admin.metadata);
    const archived = await create();
    await s.clients.keys.archiveKey({ id: archived.key!.id }, admin.metadata);
    const expired = await create();
    await s.collections.keys.updateOne({ _id: expired.key!.id }, { $set: { expires_at: new Date(Date.now() - 1000) } });
    const cases: Record<string, Record<string, string>> = {
      garbage: { 'x-api-key': 'hello' },
      'not a bearer': { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      unknown: { 'x-api-key': generateSecret('sk', 'live') },
      revoked: { 'x-api-key': revoked.secret },
      archived: { authorization: `Bearer ${archived.secret}` },
      expired: { 'x-api-key': expired.secret },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const a = await authorize(headers);
      expect({ name, ...refusal(a) }).toEqual({ name, status: 401, code: 401, grpc: 'UNAUTHENTICATED', reason: 'INVALID_API_KEY' });
      // Nothing tells a caller which of these it was (except the header format).
      if (name !== 'not a bearer') expect(a.body?.error.message).toBe('the API key is incorrect, revoked, archived or expired');
    }
  });

  it('answers 403 INSUFFICIENT_SCOPE when a scope of x-required-scopes is missing', async () => {
    const { secret } = await create({ scopes: ['read'] });
    const a = await authorize({ 'x-api-key': secret, 'x-required-scopes': 'read, admin' });
    expect(refusal(a)).toEqual({ status: 403, code: 403, grpc: 'PERMISSION_DENIED', reason: 'INSUFFICIENT_SCOPE' });
    expect(a.body?.error.message).toMatch(/read, admin/);
    expect((await authorize({ 'x-api-key': secret, 'x-required-scopes': ' read ,, ' })).status).toBe(200);
  });

  it("answers 429 RATE_LIMITED with Retry-After once the key's limit is reached", async () => {
    const { secret } = await create({ rateLimit: { limit: 2, windowSeconds: 60 } });
    expect((await authorize({ 'x-api-key': secret })).status).toBe(200);
    expect((await authorize({ 'x-api-key': secret })).status).toBe(200);
    const a = await authorize({ 'x-api-key': secret });
    expect(refusal(a)).toEqual({ status: 429, code: 429, grpc: 'RESOURCE_EXHAUSTED', reason: 'RATE_LIMITED' });
    const retryAfter = Number(a.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
  });

  it('answers 503 STORAGE_UNAVAILABLE when the key cannot be read, never 200', async () => {
    const a = await endpoint.whileStorageDown(() => authorize({ 'x-api-key': generateSecret('sk', 'live') }));
    expect(refusal(a)).toEqual({ status: 503, code: 503, grpc: 'UNAVAILABLE', reason: 'STORAGE_UNAVAILABLE' });
  });

  it('answers 401 to a caller without one of VERIFY_TOKENS in x-service-token, before looking at the key', async () => {
    const { secret } = await create();
    const call = (serviceToken?: string) =>
      fetch(`${base}/authorize`, {
        headers: { 'x-api-key': secret, ...(serviceToken === undefined ? {} : { 'x-service-token': serviceToken }) },
      });
    const refusedAs = async (serviceToken?: string) => {
      const res = await call(serviceToken);
      const body = (await res.json()) as NonNullable<Answer['body']>;
      return { status: res.status, reason: body.error.reason, keyId: res.headers.get('x-key-id') };
    };
    expect(await refusedAs()).toEqual({ status: 401, reason: 'UNAUTHENTICATED', keyId: null });
    expect(await refusedAs(`${s.verifyToken}x`)).toEqual({ status: 401, reason: 'INVALID_TOKEN', keyId: null });
    expect(await refusedAs(secret)).toEqual({ status: 401, reason: 'INVALID_TOKEN', keyId: null });
    expect(await refusedAs(await s.userToken())).toEqual({ status: 401, reason: 'INVALID_TOKEN', keyId: null });
    expect(s.logs.join('')).toMatch(/forward auth called without a valid x-service-token/);
  });

  it('checks x-service-token on every request of a kept-alive connection, not only the first', async () => {
    const { secret } = await create();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports: number[] = [];
    const call = (serviceToken: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          `${base}/authorize`,
          { agent, headers: { 'x-service-token': serviceToken, 'x-api-key': secret } },
          (res) => {
            ports.push(req.socket!.localPort!);
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      expect([await call(s.verifyToken), await call(otherLastChar(s.verifyToken)), await call(s.verifyToken)]).toEqual([200, 401, 200]);
      expect(new Set(ports).size).toBe(1); // one connection throughout
    } finally {
      agent.destroy();
    }
  });

  it('answers 431 to request headers over 16 KiB, and keeps serving', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${base}/authorize`,
        { headers: { 'x-service-token': s.verifyToken, 'x-filler': 'x'.repeat(20_000) } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
    const { secret } = await create();
    expect((await authorize({ 'x-api-key': secret })).status).toBe(200);
  });

  it('counts its verifications in apikeys_verify_results_total, as VerifyKey does', async () => {
    const { secret } = await create();
    const count = async (code: string) => sampleValue(await scrape(s.app.metricsPort!), 'apikeys_verify_results_total', { code }) ?? 0;
    const [valid, malformed] = [await count('VALID'), await count('MALFORMED')];
    await authorize({ 'x-api-key': secret });
    await authorize({ 'x-api-key': secret });
    await authorize({ 'x-api-key': 'nonsense' });
    expect([(await count('VALID')) - valid, (await count('MALFORMED')) - malformed]).toEqual([2, 1]);
  });

  it('refuses a key revoked through another instance within 1 s, though this one presented it just before', async () => {
    // The product's promise (VERIFY_REVOCATION_BOUND_MS), on the instance that remembers the key's lookup hash.
    const b = await startSecondInstance(s, { HTTP_AUTH_ADDR: '127.0.0.1:0' });
    try {
      const { key, secret } = await create();
      const onB = async () =>
        (
          await fetch(`http://127.0.0.1:${b.app.httpAuthPort!}/authorize`, {
            headers: { 'x-service-token': s.verifyToken, 'x-api-key': secret },
          })
        ).status;
      for (let i = 0; i < 3; i++) expect(await onB()).toBe(200);
      await s.clients.keys.revokeKey({ id: key!.id }, admin.metadata);
      const revokedAt = Date.now();
      const outcomes: { sentAt: number; status: number }[] = [];
      while (Date.now() < revokedAt + 1_600) {
        const sentAt = Date.now();
        outcomes.push({ sentAt, status: await onB() });
        await new Promise((r) => setTimeout(r, 50));
      }
      const late = outcomes.filter((o) => o.sentAt > revokedAt + 1_000);
      expect(late.length).toBeGreaterThan(5);
      expect(new Set(late.map((o) => o.status))).toEqual(new Set([401]));
      const firstRefused = outcomes.findIndex((o) => o.status !== 200);
      expect(outcomes.slice(firstRefused).filter((o) => o.status === 200)).toEqual([]);
    } finally {
      await b.stop();
    }
  });

  it('never logs the key or the service token', async () => {
    const { secret } = await create();
    await authorize({ 'x-api-key': secret });
    await fetch(`${base}/authorize`, { headers: { 'x-api-key': secret, 'x-service-token': `${s.verifyToken}x` } });
    const logs = s.logs.join('');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(s.verifyToken);
  });
});

describe('forward-auth endpoint with HTTP_AUTH_MAX_CONNECTIONS=2', () => {
  let endpoint: ForwardAuthServer;
  beforeAll(async () => {
    endpoint = await startForwardAuthServer('forward_auth_cap', { HTTP_AUTH_MAX_CONNECTIONS: '2' });
  });
  afterAll(() => endpoint.server.stop());

  const port = () => endpoint.server.app.httpAuthPort!;
  const open = () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect(port(), '127.0.0.1', () => resolve(socket)).on('error', reject);
    });
  /** Sends one request on `socket`; resolves with what came back before the socket closed or answered. */
  const ask = (socket: Socket) =>
    new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\r\n\r\n')) resolve(got);
      });
      socket.on('close', () => resolve(got));
      socket.on('error', () => resolve(got));
      socket.write(`GET /authorize HTTP/1.1\r\nhost: x\r\nx-service-token: ${endpoint.server.verifyToken}\r\nx-api-key: nonsense\r\n\r\n`);
    });
  const dropped = async () =>
    sampleValue(await scrape(endpoint.server.app.metricsPort!), 'apikeys_forward_auth_connections_dropped_total') ?? 0;

  it('closes a third connection as it arrives while two are open, counts it, and serves again once one closes', async () => {
    const before = await dropped();
    const held = [await open(), await open()];
    for (const socket of held) expect(await ask(socket)).toMatch(/^HTTP\/1\.1 401 /);
    const third = await open();
    expect(await ask(third)).toBe('');
    expect((await dropped()) - before).toBe(1);
    // Both held connections still work.
    for (const socket of held) expect(await ask(socket)).toMatch(/^HTTP\/1\.1 401 /);
    held[0].destroy();
    for (let i = 0; i < 50; i++) {
      const socket = await open();
      const answer = await ask(socket);
      socket.destroy();
      if (answer !== '') {
        expect(answer).toMatch(/^HTTP\/1\.1 401 /);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('no connection was accepted after one of the two closed');
  });
});

/** The token with its last character changed (appending or overwriting with a fixed one may leave it equal). */
function otherLastChar(token: string): string {
  return token.slice(0, -1) + (token.endsWith('x') ? 'y' : 'x');
}
