import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkKey, REFUSALS, refusalResponse, UNAVAILABLE, type ApiKeyIdentity, type KeyCheck, type Verifies } from './apiKeyCheck';
import type { ApiKeyOptions } from './express';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified key's identity, set by apiKeyHook; null until then (decorateApiKey). */
    apiKey: ApiKeyIdentity | null;
  }
}

/** Declares `request.apiKey` on `app` (Fastify wants request properties declared up front). Call once, before the routes. */
export function decorateApiKey(app: FastifyInstance): void {
  app.decorateRequest('apiKey', null);
}

/**
 * A Fastify `onRequest` (or `preHandler`) hook: verifies the request's `authorization: Bearer
 * <key>` or `x-api-key` and sets `request.apiKey`; otherwise answers 401/403/429/503 with the JSON
 * error envelope (docs/gateways.md). As `onRequest`, a refused request's body is never parsed.
 */
export function apiKeyHook(
  verifier: Verifies,
  options: ApiKeyOptions = {},
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const required = options.requiredScopes ?? [];
  return async (request, reply) => {
    let check: KeyCheck;
    try {
      check = await checkKey(verifier, request.headers, required);
    } catch {
      check = { ok: false, refusal: UNAVAILABLE };
    }
    if (check.ok) {
      request.apiKey = check.identity;
      return undefined;
    }
    const r = refusalResponse(check.refusal, REFUSALS[check.refusal.reason]);
    // Returning the reply tells Fastify the hook answered: the route does not run.
    return reply.code(r.http).headers(r.headers).send(r.body);
  };
}
