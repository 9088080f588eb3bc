import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { outcomeOf, presentedKey, refusalResponse, type ApiKeyIdentity } from '../../client/http/apiKeyCheck';
import type { Authenticator } from '../../domain/authentication';
import { DomainError, type Reason } from '../../domain/errors';
import type { VerifiedKey } from '../../domain/keyCache';
import type { VerifyResult, Verifier } from '../../domain/verification';
import type { Logger } from '../../logging/logger';
import { splitHostPort, type Metrics } from '../../observability/metrics';
import { httpStatusOf, toDomainError } from '../errors';
import { verifyKeyResponse } from '../handlers/verifyService';

/**
 * The forward-auth endpoint (HTTP_AUTH_ADDR): what nginx `auth_request`, Caddy `forward_auth`,
 * Traefik ForwardAuth and Envoy's HTTP `ext_authz` call before letting a request through. Any
 * method on /authorize or a path under it (Envoy appends the original path). The header contract
 * and the proxies' configurations are in docs/gateways.md.
 */

export interface ForwardAuthDeps {
  verifier: Verifier;
  authenticator: Authenticator;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Bounds of the endpoint's HTTP server. Proxies send small requests over kept-alive connections;
 * the idle timeout outlasts nginx's upstream keepalive_timeout (60 s), so nginx, not this server,
 * closes an idle connection, and never sends a request on one this side has just closed.
 */
export const FORWARD_AUTH_LIMITS = { maxHeaderBytes: 16 * 1024, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000 };

interface Answer {
  http: number;
  /** Flat name, value, name, value… (what writeHead takes fastest). */
  headers: string[];
  body: string;
}

export function forwardAuthHandler(deps: ForwardAuthDeps): RequestListener {
  /**
   * The 200 for each cache entry a VALID result came from, built once: it depends on the entry
   * alone (immutable: a changed key is a new entry), and goes with it.
   */
  const allowedFor = new WeakMap<VerifiedKey, Answer>();
  const answerFor = (result: VerifyResult, scopes: readonly string[]): Answer => {
    const { key } = result;
    const reusable = key && result.code === 'VALID' && !result.rate;
    const kept = reusable ? allowedFor.get(key) : undefined;
    if (kept) return kept;
    const outcome = outcomeOf(verifyKeyResponse(result), scopes);
    const a = outcome.ok ? allowed(outcome.identity) : refused(outcome.refusal);
    if (reusable) allowedFor.set(key, a);
    return a;
  };
  const answer = (res: ServerResponse, result: VerifyResult, scopes: readonly string[]) => {
    deps.metrics.verifyResult(result.code);
    send(res, answerFor(result, scopes));
  };
  // Bodies are never read: Node discards what arrives of one once the answer is sent.
  return (req, res) => {
    if (!isAuthorizePath(req.url ?? '')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: forward auth is at /authorize\n');
      return;
    }
    // req.headers, not a scan of req.rawHeaders: Node's server builds it for every request anyway.
    const { headers } = req;
    const unknownProxy = proxyRefusal(req, headers['x-service-token'], deps);
    if (unknownProxy) {
      send(res, unknownProxy);
      return;
    }
    const presented = presentedKey(headers);
    if ('reason' in presented) {
      send(res, refused(presented));
      return;
    }
    const scopes = requiredScopes(headers['x-required-scopes']);
    // The same verification, cache and counting as VerifyKey, in process; answered at once when
    // the key is cached (no promise), after the read otherwise.
    const result = deps.verifier.check(presented.secret, scopes);
    if (!(result instanceof Promise)) answer(res, result, scopes);
    else
      result.then(
        (r) => answer(res, r, scopes),
        (err: unknown) => send(res, refused(toDomainError(err, deps.logger))),
      );
  };
}

const AUTHORIZE = '/authorize';

/** /authorize, /authorize/ and anything under it, with or without a query. */
function isAuthorizePath(url: string): boolean {
  if (!url.startsWith(AUTHORIZE)) return false;
  const next = url.charAt(AUTHORIZE.length);
  return next === '' || next === '/' || next === '?';
}

/**
 * The service token each connection has proven. A proxy sends the same token on every request of
 * a kept-alive connection; once it passed the constant-time check, comparing the next one with
 * it leaks nothing (it is what this same peer sent), and saves hashing it again.
 */
const provenTokens = new WeakMap<Socket, string>();

/** The answer for a caller without one of VERIFY_TOKENS in x-service-token (`token`); undefined for a proxy that has one. */
function proxyRefusal(req: IncomingMessage, token: string | string[] | undefined, deps: ForwardAuthDeps): Answer | undefined {
  if (typeof token === 'string' && provenTokens.get(req.socket) === token) return undefined;
  if (typeof token === 'string' && deps.authenticator.isServiceToken(token)) {
    provenTokens.set(req.socket, token);
    return undefined;
  }
  const error =
    token === undefined
      ? new DomainError('UNAUTHENTICATED', 'missing x-service-token: the proxy must send one of VERIFY_TOKENS')
      : new DomainError('INVALID_TOKEN', 'x-service-token is not one of VERIFY_TOKENS');
  // A proxy without its token refuses every request as if the keys were bad: make that findable.
  deps.logger.warn({ peer: req.socket.remoteAddress, reason: error.reason }, 'forward auth called without a valid x-service-token');
  return refused(error);
}

function allowed({ keyId, orgId, scopes }: ApiKeyIdentity): Answer {
  return {
    http: 200,
    headers: ['x-key-id', keyId, 'x-org-id', orgId, 'x-key-scopes', scopes.join(','), 'cache-control', 'no-store', 'content-length', '0'],
    body: '',
  };
}

function refused(r: { reason: Reason; message: string; retryAfterSeconds?: number }): Answer {
  const { http, headers, body } = refusalResponse(r, httpStatusOf(r.reason));
  return { http, headers: Object.entries(headers).flat(), body };
}

/** `x-required-scopes: read, write` (repeated headers count together); none: any valid key passes. */
function requiredScopes(header: string | string[] | undefined): string[] {
  // One scope, or none: the usual cases, without split, map and filter.
  if (header === undefined) return [];
  if (typeof header === 'string' && !header.includes(',')) {
    const scope = header.trim();
    return scope ? [scope] : [];
  }
  const raw = Array.isArray(header) ? header.join(',') : header;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function send(res: ServerResponse, a: Answer): void {
  res.writeHead(a.http, a.headers).end(a.body);
}

/** An HTTP server with the endpoint's bounds (also the benchmark's, for its empty handler). */
export function forwardAuthServer(listener: RequestListener): Server {
  const server = createServer({ maxHeaderSize: FORWARD_AUTH_LIMITS.maxHeaderBytes }, listener);
  server.requestTimeout = FORWARD_AUTH_LIMITS.requestTimeoutMs;
  server.headersTimeout = FORWARD_AUTH_LIMITS.requestTimeoutMs;
  server.keepAliveTimeout = FORWARD_AUTH_LIMITS.keepAliveTimeoutMs;
  return server;
}

export interface ForwardAuthEndpoint {
  port: number;
  /** Stops accepting; requests in flight get `graceMs` to finish, then every connection is closed. */
  close(graceMs: number): Promise<void>;
}

export function serveForwardAuth(deps: ForwardAuthDeps, addr: string, maxConnections: number): Promise<ForwardAuthEndpoint> {
  const { host, port } = splitHostPort(addr);
  const server = forwardAuthServer(forwardAuthHandler(deps));
  // Past the cap, Node closes a new connection as it arrives: a proxy retries it or answers 502, and the process keeps its memory.
  server.maxConnections = maxConnections;
  server.on('drop', () => deps.metrics.forwardAuthConnectionDropped());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as { port: number }).port;
      deps.logger.info({ addr, port: bound }, 'forward auth listening on /authorize');
      resolve({
        port: bound,
        close: (graceMs) =>
          new Promise<void>((done) => {
            const force = setTimeout(() => server.closeAllConnections(), graceMs);
            server.close(() => {
              clearTimeout(force);
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
