import { z } from 'zod';
import { isValidPrefix, PREFIX_RULE } from '../domain/keyFormat';
import { parseForeignFormats, type ForeignKeyFormat } from '../domain/secretFormats';

/** Thrown by loadConfig; the message names every bad variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const csv = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

const base64Key = z
  .string()
  .refine(
    (v) => /^[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === 32,
    'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
  );

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** An HTTP endpoint's host:port, or "off". */
const addressOrOff = (example: string, fallback: string) =>
  z
    .string()
    .regex(/^off$|^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, `must be host:port (e.g. ${example}) or "off"`)
    .default(fallback);

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const LOOPBACK_HOSTS = ['127.0.0.1', '[::1]', 'localhost'];

/** AUTH_JWKS as a URL; undefined when it is a file path. Throws for a malformed URL. */
export function jwksUrl(location: string): URL | undefined {
  return URL_SCHEME.test(location) ? new URL(location) : undefined;
}

/** Keys fetched over plain http could be swapped in transit; http is left for local test servers. */
function jwksLocationAllowed(location: string): boolean {
  try {
    const url = jwksUrl(location);
    return !url || url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.includes(url.hostname));
  } catch {
    return false;
  }
}

/**
 * Rules across variables, read from the raw values so they are reported beside every other
 * problem (zod skips an object's refinements once a field fails to parse).
 */
function crossVariableProblems(env: Record<string, string | undefined>): string[] {
  if (!env.AUTH_JWKS) return [];
  // A JWKS is usually an identity provider's, signing tokens for many services: without both
  // checks, a token it issued for any of them would be accepted here.
  return ['AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE'].filter((name) => !env[name]).map((name) => `${name}: required when AUTH_JWKS is set`);
}

const schema = z.object({
  GRPC_ADDR: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:50051')
    .default('0.0.0.0:50051'),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .default('mongodb://127.0.0.1:27017/apikeys'),
  MONGODB_DATABASE: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,38}$/, 'letters, digits, _ and - only')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ACCESS_LOG_VERIFY_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0.01),
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 key)').optional(),
  AUTH_JWKS: z
    .string()
    .refine(jwksLocationAllowed, 'must be a file path or an https:// URL (http:// only for 127.0.0.1, [::1] or localhost)')
    .optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  AUTH_JWT_MAX_AGE_SECONDS: positiveInt(86_400),
  VERIFY_TOKENS: csv.pipe(z.array(z.string().min(24, 'each token must be at least 24 characters'))),
  STAFF_EMAIL_DOMAINS: csv.pipe(z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, 'must be a lowercase domain'))),
  KEY_PREFIX: z.string().refine(isValidPrefix, `must be ${PREFIX_RULE}`).default('sk'),
  ORG_KEY_LIMIT: positiveInt(100),
  // Formats of keys imported from other systems (ImportKeys), tried after our own: docs/configuration.md.
  FOREIGN_KEY_FORMATS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const { formats, problems } = parseForeignFormats(v ?? '[]');
      for (const message of problems) ctx.addIssue({ code: 'custom', message });
      return formats;
    }),
  PAGE_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  MONGODB_TIMEOUT_MS: positiveInt(2000),
  MONGODB_OPERATION_TIMEOUT_MS: positiveInt(10_000),
  // Operations: metrics, health, shutdown, transport limits.
  METRICS_ADDR: addressOrOff('0.0.0.0:9464', '0.0.0.0:9464'),
  // The forward-auth endpoint for HTTP proxies (docs/gateways.md).
  HTTP_AUTH_ADDR: addressOrOff('0.0.0.0:8080', 'off'),
  HTTP_AUTH_MAX_CONNECTIONS: positiveInt(1024),
  HEALTH_CHECK_INTERVAL_MS: positiveInt(1000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  GRPC_MAX_RECEIVE_MESSAGE_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  GRPC_MAX_SEND_MESSAGE_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  // Node's HTTP/2 layer refuses header blocks over 64 KiB whatever is set here.
  GRPC_MAX_METADATA_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(65_535)
    .default(16 * 1024),
  GRPC_KEEPALIVE_TIME_MS: positiveInt(60_000),
  GRPC_KEEPALIVE_TIMEOUT_MS: positiveInt(20_000),
  GRPC_MAX_CONCURRENT_STREAMS: z.coerce.number().int().min(0).default(0),
  GRPC_MAX_CONNECTION_AGE_MS: z.coerce.number().int().min(0).default(0),
  GRPC_MAX_CONNECTION_IDLE_MS: z.coerce.number().int().min(0).default(0),
  GRPC_LEAN_VERIFY: z.enum(['on', 'off']).default('on'),
  VERIFY_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).default(100_000),
  VERIFY_CACHE_TTL_MS: positiveInt(60_000),
  VERIFY_NEGATIVE_TTL_MS: positiveInt(10_000),
  VERIFY_NEGATIVE_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).default(10_000),
  INVALIDATION_POLL_MS: positiveInt(500),
  VERIFY_REVOCATION_BOUND_MS: positiveInt(1_000),
  VERIFY_MAX_CONCURRENT_READS: positiveInt(100),
  AUTH_FAILURE_LIMIT: positiveInt(30),
  AUTH_FAILURE_WINDOW_MS: positiveInt(10_000),
  USAGE_FLUSH_INTERVAL_MS: positiveInt(10_000),
  RATE_LIMIT_SYNC_MS: positiveInt(200),
  WATCH_MAX_PENDING_EVENTS: positiveInt(1_000),
  SECRET_ENCRYPTION_KEY: base64Key.optional(),
  SECRET_DECRYPTION_KEYS: csv.pipe(z.array(base64Key)),
  ROTATION_MAX_OVERLAP_SECONDS: positiveInt(7 * 86_400),
  ROTATION_DEFAULT_OVERLAP_SECONDS: z.coerce.number().int().min(0).default(86_400),
  IDEMPOTENCY_WINDOW_SECONDS: positiveInt(86_400),
  USAGE_RETENTION_DAYS: positiveInt(400),
  // The audit log is promised for at least this long (docs/api.md, "Audit log").
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(90, 'must be at least 90 (days)').default(400),
  // Pollers must still find every entry logged since their last successful poll; a minute covers a slow one.
  KEY_CHANGE_RETENTION_SECONDS: z.coerce.number().int().min(60, 'must be at least 60 (seconds)').default(3_600),
  // Create requests may hold sealed secrets that must go when their window ends: sweep often.
  RETENTION_SWEEP_INTERVAL_MS: z.coerce.number().int().positive().max(300_000, 'must be at most 300000 (5 minutes)').default(60_000),
});

export interface Config {
  grpcAddr: string;
  mongodbUri: string;
  /** Database name; from MONGODB_DATABASE, else the URI's path, else "apikeys". */
  mongodbDatabase: string;
  logLevel: string;
  accessLog: {
    /** Share of successful VerifyKey calls the access log writes a line for (0–1); failed calls always get one. */
    verifySampleRate: number;
  };
  auth: {
    jwtSecret?: string;
    /** A JWKS file path or https URL, for asymmetric user tokens. */
    jwks?: string;
    jwtIssuer?: string;
    jwtAudience?: string;
    /** User tokens issued (`iat`) longer ago than this are refused, whatever their `exp`. */
    jwtMaxAgeSeconds: number;
    verifyTokens: string[];
    staffEmailDomains: string[];
  };
  keyPrefix: string;
  /** Formats of imported keys' secrets, compiled; VerifyKey tries them after our own. */
  foreignKeyFormats: ForeignKeyFormat[];
  orgKeyLimit: number;
  /** HMAC key for page tokens; instances behind one load balancer must share it. */
  pageTokenSecret?: string;
  /** How long a storage call may wait for a reachable server before failing (UNAVAILABLE). */
  mongodbTimeoutMs: number;
  /** Queries carry it as maxTimeMS (the server gives up on them); writes fail client-side 5 s after it. */
  mongodbOperationTimeoutMs: number;
  /** host:port of the Prometheus endpoint (`/metrics`); null when METRICS_ADDR=off. */
  metricsAddr: string | null;
  /** host:port of the forward-auth endpoint (`/authorize`); null when HTTP_AUTH_ADDR is off. */
  httpAuthAddr: string | null;
  /** Connections the forward-auth endpoint holds at once; more are closed as they arrive. */
  httpAuthMaxConnections: number;
  /** How often MongoDB is pinged; health is NOT_SERVING while the ping fails. */
  healthCheckIntervalMs: number;
  /** How long shutdown waits for in-flight calls before cancelling them. */
  shutdownGraceMs: number;
  grpc: {
    maxReceiveMessageBytes: number;
    maxSendMessageBytes: number;
    maxMetadataBytes: number;
    keepaliveTimeMs: number;
    keepaliveTimeoutMs: number;
    /** 0: unlimited (the HTTP/2 default). */
    maxConcurrentStreams: number;
    /** 0: connections are never aged out. */
    maxConnectionAgeMs: number;
    /** 0: idle connections are kept. */
    maxConnectionIdleMs: number;
    /** VerifyKey takes the lean way through HTTP/2 (transport/leanUnary.ts); off: grpc-js's own, as every other method. */
    leanVerify: boolean;
  };
  verify: {
    cacheMaxEntries: number;
    cacheTtlMs: number;
    negativeTtlMs: number;
    /** Own LRU for "no such key", so unknown keys never push found ones out. */
    negativeCacheMaxEntries: number;
    /** How often the key change log is polled. */
    invalidationPollMs: number;
    /**
     * The promise: a key ended through another instance stops verifying here within this. A
     * cached key is used only while a change-log poll that started at most this long ago succeeded.
     */
    revocationBoundMs: number;
    /** Distinct keys read from storage at once; past it a miss answers UNAVAILABLE at once. */
    maxConcurrentReads: number;
    usageFlushIntervalMs: number;
    /** How often each instance exchanges its rate-limit counters of the keys used since the last exchange. */
    rateLimitSyncMs: number;
    /** WatchKeyChanges: messages a subscriber may leave unread, and changes replayed on a resume, before a RESET. */
    watchMaxPendingEvents: number;
  };
  secrets: {
    /** Seals recoverable secrets; unset: recoverable keys are refused. */
    encryptionKey?: Buffer;
    /** Previous encryption keys, still accepted for reading back older secrets. */
    decryptionKeys: Buffer[];
  };
  rotation: { maxOverlapSeconds: number; defaultOverlapSeconds: number };
  idempotencyWindowSeconds: number;
  /** Failed API-key authentications per peer host: past `limit` in `windowMs`, the peer is refused. */
  authFailures: { limit: number; windowMs: number };
  retention: {
    usageDays: number;
    auditDays: number;
    keyChangeSeconds: number;
    sweepIntervalMs: number;
  };
}

/** Settings that must exceed others: each value parsed on its own, as above, so every problem is listed at once. */
function orderingProblems(env: Record<string, string | undefined>): string[] {
  const value = (name: keyof typeof schema.shape): number | undefined => {
    const r = schema.shape[name].safeParse(env[name]);
    return r.success && typeof r.data === 'number' ? r.data : undefined;
  };
  const problems: string[] = [];
  const bound = value('VERIFY_REVOCATION_BOUND_MS');
  const poll = value('INVALIDATION_POLL_MS');
  if (bound !== undefined && poll !== undefined && bound <= poll) {
    problems.push(
      `VERIFY_REVOCATION_BOUND_MS: must be greater than INVALIDATION_POLL_MS (${poll}): ` +
        'cached keys are trusted only while a change-log poll started within the bound has succeeded',
    );
  }
  const retentionSeconds = value('KEY_CHANGE_RETENTION_SECONDS');
  const ttl = value('VERIFY_CACHE_TTL_MS');
  if (retentionSeconds !== undefined && ttl !== undefined && retentionSeconds * 1000 < ttl + CHANGE_RETENTION_MARGIN_MS) {
    problems.push(
      `KEY_CHANGE_RETENTION_SECONDS: must be at least ${Math.ceil((ttl + CHANGE_RETENTION_MARGIN_MS) / 1000)} ` +
        `(VERIFY_CACHE_TTL_MS ${ttl} + 60 s): an instance whose polls failed for longer would miss changes ` +
        'pruned meanwhile, and must be sure every entry it cached before them has expired',
    );
  }
  return problems;
}

/** Room for clock skew and a slow poll between a cache entry's expiry and the log's pruning. */
const CHANGE_RETENTION_MARGIN_MS = 60_000;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset, as they do in most .env tooling.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  const problems = [
    ...(parsed.error?.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`) ?? []),
    ...crossVariableProblems(present),
    ...orderingProblems(present),
  ];
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const c = parsed.data;
  return {
    grpcAddr: c.GRPC_ADDR,
    mongodbUri: c.MONGODB_URI,
    mongodbDatabase: c.MONGODB_DATABASE ?? databaseFromUri(c.MONGODB_URI) ?? 'apikeys',
    logLevel: c.LOG_LEVEL,
    accessLog: { verifySampleRate: c.ACCESS_LOG_VERIFY_SAMPLE_RATE },
    auth: {
      jwtSecret: c.AUTH_JWT_SECRET,
      jwks: c.AUTH_JWKS,
      jwtIssuer: c.AUTH_JWT_ISSUER,
      jwtAudience: c.AUTH_JWT_AUDIENCE,
      jwtMaxAgeSeconds: c.AUTH_JWT_MAX_AGE_SECONDS,
      verifyTokens: c.VERIFY_TOKENS,
      staffEmailDomains: c.STAFF_EMAIL_DOMAINS,
    },
    keyPrefix: c.KEY_PREFIX,
    foreignKeyFormats: c.FOREIGN_KEY_FORMATS,
    orgKeyLimit: c.ORG_KEY_LIMIT,
    pageTokenSecret: c.PAGE_TOKEN_SECRET,
    mongodbTimeoutMs: c.MONGODB_TIMEOUT_MS,
    mongodbOperationTimeoutMs: c.MONGODB_OPERATION_TIMEOUT_MS,
    metricsAddr: c.METRICS_ADDR === 'off' ? null : c.METRICS_ADDR,
    httpAuthAddr: c.HTTP_AUTH_ADDR === 'off' ? null : c.HTTP_AUTH_ADDR,
    httpAuthMaxConnections: c.HTTP_AUTH_MAX_CONNECTIONS,
    healthCheckIntervalMs: c.HEALTH_CHECK_INTERVAL_MS,
    shutdownGraceMs: c.SHUTDOWN_GRACE_MS,
    grpc: {
      maxReceiveMessageBytes: c.GRPC_MAX_RECEIVE_MESSAGE_BYTES,
      maxSendMessageBytes: c.GRPC_MAX_SEND_MESSAGE_BYTES,
      maxMetadataBytes: c.GRPC_MAX_METADATA_BYTES,
      keepaliveTimeMs: c.GRPC_KEEPALIVE_TIME_MS,
      keepaliveTimeoutMs: c.GRPC_KEEPALIVE_TIMEOUT_MS,
      maxConcurrentStreams: c.GRPC_MAX_CONCURRENT_STREAMS,
      maxConnectionAgeMs: c.GRPC_MAX_CONNECTION_AGE_MS,
      maxConnectionIdleMs: c.GRPC_MAX_CONNECTION_IDLE_MS,
      leanVerify: c.GRPC_LEAN_VERIFY === 'on',
    },
    verify: {
      cacheMaxEntries: c.VERIFY_CACHE_MAX_ENTRIES,
      cacheTtlMs: c.VERIFY_CACHE_TTL_MS,
      negativeTtlMs: c.VERIFY_NEGATIVE_TTL_MS,
      negativeCacheMaxEntries: c.VERIFY_NEGATIVE_CACHE_MAX_ENTRIES,
      invalidationPollMs: c.INVALIDATION_POLL_MS,
      revocationBoundMs: c.VERIFY_REVOCATION_BOUND_MS,
      maxConcurrentReads: c.VERIFY_MAX_CONCURRENT_READS,
      usageFlushIntervalMs: c.USAGE_FLUSH_INTERVAL_MS,
      rateLimitSyncMs: c.RATE_LIMIT_SYNC_MS,
      watchMaxPendingEvents: c.WATCH_MAX_PENDING_EVENTS,
    },
    secrets: {
      encryptionKey: c.SECRET_ENCRYPTION_KEY ? Buffer.from(c.SECRET_ENCRYPTION_KEY, 'base64') : undefined,
      decryptionKeys: c.SECRET_DECRYPTION_KEYS.map((k) => Buffer.from(k, 'base64')),
    },
    rotation: { maxOverlapSeconds: c.ROTATION_MAX_OVERLAP_SECONDS, defaultOverlapSeconds: c.ROTATION_DEFAULT_OVERLAP_SECONDS },
    idempotencyWindowSeconds: c.IDEMPOTENCY_WINDOW_SECONDS,
    authFailures: { limit: c.AUTH_FAILURE_LIMIT, windowMs: c.AUTH_FAILURE_WINDOW_MS },
    retention: {
      usageDays: c.USAGE_RETENTION_DAYS,
      auditDays: c.AUDIT_RETENTION_DAYS,
      keyChangeSeconds: c.KEY_CHANGE_RETENTION_SECONDS,
      sweepIntervalMs: c.RETENTION_SWEEP_INTERVAL_MS,
    },
  };
}

function databaseFromUri(uri: string): string | undefined {
  const path = uri
    .replace(/^mongodb(\+srv)?:\/\/[^/]*/, '')
    .replace(/^\//, '')
    .split('?')[0];
  return path || undefined;
}
