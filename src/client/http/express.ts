import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkKey, REFUSALS, refusalResponse, UNAVAILABLE, type ApiKeyIdentity, type Refusal, type Verifies } from './apiKeyCheck';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's extension point for request properties is its global namespace
  namespace Express {
    interface Request {
      /** The verified key's identity, set by apiKeyMiddleware before the next handler runs. */
      apiKey?: ApiKeyIdentity;
    }
  }
}

export interface ApiKeyOptions {
  /** Every one of these must be among the key's scopes (403 otherwise). Default: none. */
  requiredScopes?: readonly string[];
}

/**
 * Express/Connect middleware: verifies the request's `authorization: Bearer <key>` or
 * `x-api-key`, puts the key's identity on `req.apiKey` and calls `next()`; otherwise answers
 * 401/403/429/503 with the JSON error envelope (docs/gateways.md). A verifier that fails is 503.
 */
export function apiKeyMiddleware(
  verifier: Verifies,
  options: ApiKeyOptions = {},
): (req: IncomingMessage & { apiKey?: ApiKeyIdentity }, res: ServerResponse, next: (err?: unknown) => void) => void {
  const required = options.requiredScopes ?? [];
  return (req, res, next) => {
    checkKey(verifier, req.headers, required)
      .then(
        (check) => {
          if (!check.ok) {
            refuse(res, check.refusal);
            return;
          }
          req.apiKey = check.identity;
          next();
        },
        () => refuse(res, UNAVAILABLE),
      )
      .catch(next);
  };
}

function refuse(res: ServerResponse, refusal: Refusal): void {
  const r = refusalResponse(refusal, REFUSALS[refusal.reason]);
  res.writeHead(r.http, r.headers).end(r.body);
}
