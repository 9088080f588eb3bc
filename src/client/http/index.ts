// HTTP middleware verifying API keys, for internal Node services (Express/Connect and Fastify).
export { checkKey, REFUSALS, type ApiKeyIdentity, type ErrorEnvelope, type Verification, type Verifies } from './apiKeyCheck';
export { apiKeyMiddleware, type ApiKeyOptions } from './express';
export { apiKeyHook, decorateApiKey } from './fastify';
