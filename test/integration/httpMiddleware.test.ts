// The HTTP middleware of src/client/http in real Express and Fastify apps over real HTTP, verifying
// through the real VerifyKey RPC of a real service: what a route sees, and what a refused request
// gets back.
import type { Metadata } from '@grpc/grpc-js';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import { apiKeyHook, apiKeyMiddleware, decorateApiKey, type ApiKeyIdentity, type Verifies } from '../../src/client/http';
import { bearer, connectClients, type ApiKeysClients } from '../../src/client/promiseClient';
import { freeLoopbackPort } from '../../src/devdb/ephemeralDatabase';
import { startTestServer, type TestServer } from '../support/server';

/** Verifies over VerifyKey: the shape a KeyVerifier client has. */
function grpcVerifier(clients: ApiKeysClients, serviceToken: string): Verifies {
  return { verify: (key, requiredScopes) => clients.verify.verifyKey({ key, requiredScopes: [...requiredScopes] }, bearer(serviceToken)) };
}

interface App {
  url: string;
  /** What the routes saw on the request, one entry per request that reached a route. */
  seen: (ApiKeyIdentity | null | undefined)[];
  close(): Promise<void>;
}

/** Routes: /read (scope read), /admin (scope admin), /down (a verifier that cannot reach the service). */
async function expressApp(verifier: Verifies, down: Verifies): Promise<App> {
  const seen: App['seen'] = [];
  const app = express();
  const route = (req: express.Request, res: express.Response) => {
    seen.push(req.apiKey);
    res.json({ ok: true });
  };
  app.get('/read', apiKeyMiddleware(verifier, { requiredScopes: ['read'] }), route);
  app.post('/admin', apiKeyMiddleware(verifier, { requiredScopes: ['admin'] }), route);
  app.get('/down', apiKeyMiddleware(down), route);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function fastifyApp(verifier: Verifies, down: Verifies): Promise<App> {
  const seen: App['seen'] = [];
  const app: FastifyInstance = Fastify();
  decorateApiKey(app);
  const route = async (request: { apiKey: ApiKeyIdentity | null }) => {
    seen.push(request.apiKey);
    return { ok: true };
  };
  app.get('/read', { onRequest: apiKeyHook(verifier, { requiredScopes: ['read'] }) }, route);
  app.post('/admin', { preHandler: apiKeyHook(verifier, { requiredScopes: ['admin'] }) }, route);
  app.get('/down', { onRequest: apiKeyHook(down) }, route);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, seen, close: () => app.close() };
}

describe.each([
  ['Express', expressApp],
  ['Fastify', fastifyApp],
])('%s middleware', (_name, build) => {
  let s: TestServer;
  let admin: { orgId: string; metadata: Metadata };
  let deadClients: ApiKeysClients;
  let app: App;

  beforeAll(async () => {
    s = await startTestServer(`http_middleware_${_name.toLowerCase()}`);
    admin = await s.admin();
    // Nothing listens there: every VerifyKey fails with UNAVAILABLE.
    deadClients = connectClients(`127.0.0.1:${await freeLoopbackPort()}`);
    app = await build(grpcVerifier(s.clients, s.verifyToken), grpcVerifier(deadClients, s.verifyToken));
  });
  afterAll(async () => {
    await app?.close();
    deadClients?.close();
    await s?.stop();
  });

  const create = async (extra: Record<string, unknown> = {}) =>
    s.clients.keys.createKey({ name: 'k', scopes: ['read'], metadata: { plan: 'pro' }, ...extra }, admin.metadata);

  async function call(path: string, headers: Record<string, string>, method = 'GET') {
    const before = app.seen.length;
    const res = await fetch(`${app.url}${path}`, { method, headers });
    const body = (await res.json()) as { error?: { code: number; status: string; reason: string; message: string } };
    return { status: res.status, headers: res.headers, error: body.error, reachedRoute: app.seen.length > before };
  }

  it('lets a valid key through with its identity on the request (x-api-key or Bearer)', async () => {
    const expireTime = new Date(Date.now() + 3_600_000);
    const { key, secret } = await create({ workspaceId: 'ws_1', expireTime });
    for (const headers of [{ 'x-api-key': secret }, { authorization: `Bearer ${secret}` }] as Record<string, string>[]) {
      const r = await call('/read', headers);
      expect({ status: r.status, reachedRoute: r.reachedRoute }).toEqual({ status: 200, reachedRoute: true });
      expect(app.seen.at(-1)).toMatchObject({
        keyId: key!.id,
        orgId: admin.orgId,
        workspaceId: 'ws_1',
        scopes: ['read'],
        metadata: { plan: 'pro' },
        expireTime,
      });
      expect(app.seen.at(-1)).not.toHaveProperty('code');
    }
  });

  it('answers 401 with the JSON envelope for a missing, malformed or revoked key; the route never runs', async () => {
    const revoked = await create();
    await s.clients.keys.revokeKey({ id: revoked.key!.id }, admin.metadata);
    const cases: [string, Record<string, string>, string][] = [
      ['missing', {}, 'UNAUTHENTICATED'],
      ['malformed', { 'x-api-key': 'sk_live_nonsense' }, 'INVALID_API_KEY'],
      ['revoked', { authorization: `Bearer ${revoked.secret}` }, 'INVALID_API_KEY'],
    ];
    for (const [name, headers, reason] of cases) {
      const r = await call('/read', headers);
      expect({ name, status: r.status, error: r.error, reachedRoute: r.reachedRoute }).toEqual({
        name,
        status: 401,
        error: { code: 401, status: 'UNAUTHENTICATED', reason, message: expect.any(String) },
        reachedRoute: false,
      });
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('answers 403 INSUFFICIENT_SCOPE for a key without the required scope', async () => {
    const { secret } = await create();
    const r = await call('/admin', { 'x-api-key': secret }, 'POST');
    expect({ status: r.status, reason: r.error?.reason, grpc: r.error?.status, reachedRoute: r.reachedRoute }).toEqual({
      status: 403,
      reason: 'INSUFFICIENT_SCOPE',
      grpc: 'PERMISSION_DENIED',
      reachedRoute: false,
    });
  });

  it("answers 429 RATE_LIMITED with Retry-After past the key's limit", async () => {
    const { secret } = await create({ rateLimit: { limit: 1, windowSeconds: 30 } });
    expect((await call('/read', { 'x-api-key': secret })).status).toBe(200);
    const r = await call('/read', { 'x-api-key': secret });
    expect({ status: r.status, reason: r.error?.reason, reachedRoute: r.reachedRoute }).toEqual({
      status: 429,
      reason: 'RATE_LIMITED',
      reachedRoute: false,
    });
    const retryAfter = Number(r.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30).toBe(true);
  });

  it('answers 503 STORAGE_UNAVAILABLE, never 200, when the verifier fails', async () => {
    const { secret } = await create();
    const r = await call('/down', { 'x-api-key': secret });
    expect({ status: r.status, reason: r.error?.reason, grpc: r.error?.status, reachedRoute: r.reachedRoute }).toEqual({
      status: 503,
      reason: 'STORAGE_UNAVAILABLE',
      grpc: 'UNAVAILABLE',
      reachedRoute: false,
    });
  });
});
