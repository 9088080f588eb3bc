import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet } from 'jose';
import { jwksUrl, type Config } from '../config/config';
import type { UserTokenKeys } from '../domain/ports';

/**
 * The keys user tokens are checked with, from configuration: a JWKS read from its file once at
 * start, or fetched from its URL (jose caches it and refetches for an unknown `kid`), else the
 * shared HS256 secret. Undefined: user tokens are not accepted.
 */
export function loadUserTokenKeys(auth: Pick<Config['auth'], 'jwks' | 'jwtSecret'>): UserTokenKeys | undefined {
  if (auth.jwks) {
    const url = jwksUrl(auth.jwks);
    // The cast names what the file should hold; createLocalJWKSet checks it and throws on a malformed set.
    const keyFor = url ? createRemoteJWKSet(url) : createLocalJWKSet(JSON.parse(readFileSync(auth.jwks, 'utf8')) as JSONWebKeySet);
    return { kind: 'keySet', keyFor };
  }
  return auth.jwtSecret ? { kind: 'secret', secret: new TextEncoder().encode(auth.jwtSecret) } : undefined;
}
