import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../../src/config/config';
import { FOREIGN_KEY_FORMATS, FORMATS } from '../../support/foreignFormats';

/** The ConfigError loadConfig throws for `env`; fails the test if it does not throw one. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected loadConfig to throw for ${JSON.stringify(env)}`);
}

/** The variable names a ConfigError's problems mention (the text before the first "." or ":"). */
const named = (e: ConfigError) => [...new Set(e.problems.map((p) => p.split(/[.:]/)[0]))].sort();

const key32 = () => randomBytes(32).toString('base64');
const token = (c: string) => c.repeat(24);

describe('loadConfig defaults', () => {
  it('fills every setting from an empty environment', () => {
    const c = loadConfig({});
    expect(c.grpcAddr).toBe('0.0.0.0:50051');
    expect(c.mongodbUri).toBe('mongodb://127.0.0.1:27017/apikeys');
    expect(c.mongodbDatabase).toBe('apikeys');
    expect(c.logLevel).toBe('info');
    expect(c.accessLog).toEqual({ verifySampleRate: 0.01 });
    expect(c.keyPrefix).toBe('sk');
    expect(c.orgKeyLimit).toBe(100);
    expect(c.mongodbTimeoutMs).toBe(2000);
    expect(c.mongodbOperationTimeoutMs).toBe(10_000);
    expect(c.metricsAddr).toBe('0.0.0.0:9464');
    expect(c.healthCheckIntervalMs).toBe(1000);
    expect(c.shutdownGraceMs).toBe(10_000);
    expect(c.auth).toEqual({
      jwtSecret: undefined,
      jwks: undefined,
      jwtIssuer: undefined,
      jwtAudience: undefined,
      jwtMaxAgeSeconds: 86_400,
      verifyTokens: [],
      staffEmailDomains: [],
    });
    expect(c.pageTokenSecret).toBeUndefined();
    expect(c.verify).toEqual({
      cacheMaxEntries: 100_000,
      cacheTtlMs: 60_000,
      negativeTtlMs: 10_000,
      negativeCacheMaxEntries: 10_000,
      invalidationPollMs: 500,
      revocationBoundMs: 1_000,
      maxConcurrentReads: 100,
      usageFlushIntervalMs: 10_000,
      rateLimitSyncMs: 200,
      watchMaxPendingEvents: 1_000,
    });
    expect(c.authFailures).toEqual({ limit: 30, windowMs: 10_000 });
    expect(c.grpc).toEqual({
      maxReceiveMessageBytes: 1024 * 1024,
      maxSendMessageBytes: 4 * 1024 * 1024,
      maxMetadataBytes: 16 * 1024,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      maxConcurrentStreams: 0,
      maxConnectionAgeMs: 0,
      maxConnectionIdleMs: 0,
      leanVerify: true,
    });
    expect(c.secrets).toEqual({ encryptionKey: undefined, decryptionKeys: [] });
    expect(c.rotation).toEqual({ maxOverlapSeconds: 7 * 86_400, defaultOverlapSeconds: 86_400 });
    expect(c.idempotencyWindowSeconds).toBe(86_400);
    // Usage and audit 400 days, the change log an hour, a sweep a minute.
    expect(c.retention).toEqual({ usageDays: 400, auditDays: 400, keyChangeSeconds: 3600, sweepIntervalMs: 60_000 });
  });

  it('ignores variables it does not know (a real process.env has plenty)', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', HOME: '/root', KEY_PREFIX_TYPO: '!!' })).not.toThrow();
  });

  it('coerces numeric variables from strings', () => {
    const c = loadConfig({ ORG_KEY_LIMIT: '5', VERIFY_CACHE_MAX_ENTRIES: '0', SHUTDOWN_GRACE_MS: '0' });
    expect(c.orgKeyLimit).toBe(5);
    expect(c.verify.cacheMaxEntries).toBe(0);
    expect(c.shutdownGraceMs).toBe(0);
  });

  it('turns METRICS_ADDR=off into null', () => {
    expect(loadConfig({ METRICS_ADDR: 'off' }).metricsAddr).toBeNull();
    expect(loadConfig({ METRICS_ADDR: '127.0.0.1:9000' }).metricsAddr).toBe('127.0.0.1:9000');
    expect(loadConfig({ METRICS_ADDR: '[::]:9464' }).metricsAddr).toBe('[::]:9464');
  });

  it('leaves the forward-auth endpoint off unless HTTP_AUTH_ADDR names an address', () => {
    expect(loadConfig({}).httpAuthAddr).toBeNull();
    expect(loadConfig({ HTTP_AUTH_ADDR: 'off' }).httpAuthAddr).toBeNull();
    expect(loadConfig({ HTTP_AUTH_ADDR: '127.0.0.1:8080' }).httpAuthAddr).toBe('127.0.0.1:8080');
  });

  it('accepts bracketed IPv6 listen addresses', () => {
    expect(loadConfig({ GRPC_ADDR: '[::1]:50051' }).grpcAddr).toBe('[::1]:50051');
  });
});

describe('ConfigError', () => {
  it('names every bad variable at once', () => {
    const e = configError({ KEY_PREFIX: 'BAD', ORG_KEY_LIMIT: '-1' });
    expect(named(e)).toEqual(['KEY_PREFIX', 'ORG_KEY_LIMIT']);
    expect(e.name).toBe('ConfigError');
    expect(e.message).toContain('KEY_PREFIX');
    expect(e.message).toContain('ORG_KEY_LIMIT');
    expect(e.problems.find((p) => p.startsWith('KEY_PREFIX'))).toMatch(/lowercase/);
  });

  it('lists problems across many kinds of variable in one error', () => {
    const e = configError({
      GRPC_ADDR: 'localhost',
      MONGODB_URI: 'postgres://x',
      LOG_LEVEL: 'loud',
      AUTH_JWT_SECRET: 'short',
      ORG_KEY_LIMIT: '1.5',
      MONGODB_TIMEOUT_MS: 'soon',
      GRPC_MAX_METADATA_BYTES: '70000',
      SECRET_ENCRYPTION_KEY: 'nope',
    });
    expect(named(e)).toEqual(
      [
        'AUTH_JWT_SECRET',
        'GRPC_ADDR',
        'GRPC_MAX_METADATA_BYTES',
        'LOG_LEVEL',
        'MONGODB_TIMEOUT_MS',
        'MONGODB_URI',
        'ORG_KEY_LIMIT',
        'SECRET_ENCRYPTION_KEY',
      ].sort(),
    );
    // The message is one line per problem.
    expect(e.message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(e.problems.length);
  });

  it('rejects zero where a positive number is required, but allows it where 0 means "off"', () => {
    expect(named(configError({ ORG_KEY_LIMIT: '0' }))).toEqual(['ORG_KEY_LIMIT']);
    expect(
      loadConfig({ VERIFY_NEGATIVE_CACHE_MAX_ENTRIES: '0', ROTATION_DEFAULT_OVERLAP_SECONDS: '0' }).verify.negativeCacheMaxEntries,
    ).toBe(0);
  });

  it('requires the revocation bound to be longer than the poll interval, reported with the other problems', () => {
    const e = configError({ INVALIDATION_POLL_MS: '1000', KEY_PREFIX: 'BAD' });
    expect(named(e)).toEqual(['KEY_PREFIX', 'VERIFY_REVOCATION_BOUND_MS']);
    expect(e.problems.find((p) => p.startsWith('VERIFY_REVOCATION_BOUND_MS'))).toMatch(/greater than INVALIDATION_POLL_MS \(1000\)/);
    expect(named(configError({ VERIFY_REVOCATION_BOUND_MS: '500' }))).toEqual(['VERIFY_REVOCATION_BOUND_MS']);
    expect(loadConfig({ INVALIDATION_POLL_MS: '60000', VERIFY_REVOCATION_BOUND_MS: '120000' }).verify.revocationBoundMs).toBe(120_000);
  });

  it('requires the change log to be kept a minute longer than a cached key lives', () => {
    // Default TTL (60 s) + 60 s: the 60 s minimum is not enough with it, 120 s is.
    expect(named(configError({ KEY_CHANGE_RETENTION_SECONDS: '119' }))).toEqual(['KEY_CHANGE_RETENTION_SECONDS']);
    expect(loadConfig({ KEY_CHANGE_RETENTION_SECONDS: '120' }).retention.keyChangeSeconds).toBe(120);
    const e = configError({ VERIFY_CACHE_TTL_MS: '3600000' });
    expect(e.problems).toEqual([
      expect.stringMatching(/^KEY_CHANGE_RETENTION_SECONDS: must be at least 3660 \(VERIFY_CACHE_TTL_MS 3600000/),
    ]);
    expect(loadConfig({ VERIFY_CACHE_TTL_MS: '3600000', KEY_CHANGE_RETENTION_SECONDS: '3660' }).verify.cacheTtlMs).toBe(3_600_000);
  });
});

describe('ACCESS_LOG_VERIFY_SAMPLE_RATE', () => {
  it('takes a share from 0 to 1, both included', () => {
    expect(loadConfig({ ACCESS_LOG_VERIFY_SAMPLE_RATE: '0' }).accessLog.verifySampleRate).toBe(0);
    expect(loadConfig({ ACCESS_LOG_VERIFY_SAMPLE_RATE: '0.25' }).accessLog.verifySampleRate).toBe(0.25);
    expect(loadConfig({ ACCESS_LOG_VERIFY_SAMPLE_RATE: '1' }).accessLog.verifySampleRate).toBe(1);
  });

  it('refuses anything outside 0–1, or not a number', () => {
    for (const bad of ['-0.1', '1.5', '10', 'half']) {
      expect(named(configError({ ACCESS_LOG_VERIFY_SAMPLE_RATE: bad }))).toEqual(['ACCESS_LOG_VERIFY_SAMPLE_RATE']);
    }
  });
});

describe('empty strings count as unset', () => {
  it('falls back to defaults for empty values', () => {
    const c = loadConfig({
      KEY_PREFIX: '',
      ORG_KEY_LIMIT: '', // z.coerce would turn '' into 0 and reject it, were it not dropped
      GRPC_ADDR: '',
      LOG_LEVEL: '',
      MONGODB_DATABASE: '',
      SECRET_ENCRYPTION_KEY: '',
      AUTH_JWT_SECRET: '',
      VERIFY_TOKENS: '',
    });
    expect(c.keyPrefix).toBe('sk');
    expect(c.orgKeyLimit).toBe(100);
    expect(c.grpcAddr).toBe('0.0.0.0:50051');
    expect(c.logLevel).toBe('info');
    expect(c.mongodbDatabase).toBe('apikeys');
    expect(c.secrets.encryptionKey).toBeUndefined();
    expect(c.auth.jwtSecret).toBeUndefined();
    expect(c.auth.verifyTokens).toEqual([]);
  });

  it('treats undefined values like missing ones', () => {
    expect(loadConfig({ KEY_PREFIX: undefined }).keyPrefix).toBe('sk');
  });
});

describe('CSV variables', () => {
  it('splits VERIFY_TOKENS on commas, trimming and dropping empty items', () => {
    const c = loadConfig({ VERIFY_TOKENS: ` ${token('a')} ,, ${token('b')},` });
    expect(c.auth.verifyTokens).toEqual([token('a'), token('b')]);
  });

  it('names a too-short token by its position', () => {
    const e = configError({ VERIFY_TOKENS: `${token('a')},short` });
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^VERIFY_TOKENS\.1: .*24 characters/);
  });

  it('parses STAFF_EMAIL_DOMAINS and rejects non-lowercase or dotless domains', () => {
    expect(loadConfig({ STAFF_EMAIL_DOMAINS: 'example.com, corp.example.co.uk' }).auth.staffEmailDomains).toEqual([
      'example.com',
      'corp.example.co.uk',
    ]);
    const e = configError({ STAFF_EMAIL_DOMAINS: 'example.com,Example.COM,localhost' });
    expect(e.problems.map((p) => p.split(':')[0]).sort()).toEqual(['STAFF_EMAIL_DOMAINS.1', 'STAFF_EMAIL_DOMAINS.2']);
  });

  it('a CSV of only separators is an empty list', () => {
    expect(loadConfig({ STAFF_EMAIL_DOMAINS: ' , ,' }).auth.staffEmailDomains).toEqual([]);
  });
});

describe('JWT settings', () => {
  const idp = { AUTH_JWT_ISSUER: 'https://login.example.com/', AUTH_JWT_AUDIENCE: 'apikeys' };

  it('requires AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE with AUTH_JWKS, naming each one missing', () => {
    const jwks = 'https://login.example.com/.well-known/jwks.json';
    expect(named(configError({ AUTH_JWKS: jwks }))).toEqual(['AUTH_JWT_AUDIENCE', 'AUTH_JWT_ISSUER']);
    expect(named(configError({ AUTH_JWKS: jwks, AUTH_JWT_ISSUER: idp.AUTH_JWT_ISSUER }))).toEqual(['AUTH_JWT_AUDIENCE']);
    expect(named(configError({ AUTH_JWKS: jwks, AUTH_JWT_AUDIENCE: '', AUTH_JWT_ISSUER: idp.AUTH_JWT_ISSUER }))).toEqual([
      'AUTH_JWT_AUDIENCE',
    ]);
    expect(loadConfig({ AUTH_JWKS: jwks, ...idp }).auth).toMatchObject({
      jwks,
      jwtIssuer: idp.AUTH_JWT_ISSUER,
      jwtAudience: idp.AUTH_JWT_AUDIENCE,
    });
  });

  it('reports the missing issuer beside problems zod finds in other variables', () => {
    expect(named(configError({ AUTH_JWKS: '/etc/jwks.json', ORG_KEY_LIMIT: 'many', LOG_LEVEL: 'loud' }))).toEqual([
      'AUTH_JWT_AUDIENCE',
      'AUTH_JWT_ISSUER',
      'LOG_LEVEL',
      'ORG_KEY_LIMIT',
    ]);
  });

  it('leaves issuer and audience optional for the HS256 secret', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: 's'.repeat(32) }).auth).toMatchObject({ jwtIssuer: undefined, jwtAudience: undefined });
  });

  it.each([
    'https://login.example.com/.well-known/jwks.json',
    'HTTPS://login.example.com/jwks',
    'http://127.0.0.1:8080/jwks.json',
    'http://localhost/jwks.json',
    'http://[::1]:9000/jwks.json',
    '/etc/apikeys/jwks.json',
    'jwks.json',
  ])('accepts AUTH_JWKS=%s', (jwks) => {
    expect(loadConfig({ AUTH_JWKS: jwks, ...idp }).auth.jwks).toBe(jwks);
  });

  it.each([
    'http://login.example.com/jwks.json',
    'http://127.0.0.2/jwks.json',
    'http://localhost.example.com/jwks.json',
    'http://127.0.0.1.nip.io/jwks.json',
    'ftp://login.example.com/jwks.json',
    'file:///etc/apikeys/jwks.json',
    'https://',
  ])('refuses AUTH_JWKS=%s', (jwks) => {
    const e = configError({ AUTH_JWKS: jwks, ...idp });
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^AUTH_JWKS: must be a file path or an https:\/\/ URL/);
  });

  it('bounds token age: AUTH_JWT_MAX_AGE_SECONDS, a positive number of seconds', () => {
    expect(loadConfig({ AUTH_JWT_MAX_AGE_SECONDS: '3600' }).auth.jwtMaxAgeSeconds).toBe(3600);
    for (const bad of ['0', '-1', '1.5', 'a day']) {
      expect([bad, named(configError({ AUTH_JWT_MAX_AGE_SECONDS: bad }))]).toEqual([bad, ['AUTH_JWT_MAX_AGE_SECONDS']]);
    }
  });
});

describe('SECRET_ENCRYPTION_KEY / SECRET_DECRYPTION_KEYS', () => {
  it('decodes a 32-byte base64 key', () => {
    const k = key32();
    const c = loadConfig({ SECRET_ENCRYPTION_KEY: k });
    expect(c.secrets.encryptionKey).toEqual(Buffer.from(k, 'base64'));
    expect(c.secrets.encryptionKey).toHaveLength(32);
  });

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['not base64', '!'.repeat(44)],
    ['hex of 32 bytes', randomBytes(32).toString('hex')],
  ])('rejects %s', (_label, value) => {
    const e = configError({ SECRET_ENCRYPTION_KEY: value });
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^SECRET_ENCRYPTION_KEY: must be 32 bytes/);
  });

  it('reads previous keys as a CSV and names a bad one by position', () => {
    const [a, b] = [key32(), key32()];
    expect(loadConfig({ SECRET_DECRYPTION_KEYS: `${a}, ${b}` }).secrets.decryptionKeys).toEqual([
      Buffer.from(a, 'base64'),
      Buffer.from(b, 'base64'),
    ]);
    const e = configError({ SECRET_DECRYPTION_KEYS: `${a},${randomBytes(8).toString('base64')}` });
    expect(e.problems.map((p) => p.split(':')[0])).toEqual(['SECRET_DECRYPTION_KEYS.1']);
  });
});

describe('database name', () => {
  it.each([
    ['mongodb://db.internal:27017/tenants', 'tenants'],
    ['mongodb://db.internal:27017/tenants?replicaSet=rs0', 'tenants'],
    ['mongodb+srv://user:pw@cluster0.example.net/prod?retryWrites=true', 'prod'],
    ['mongodb://a:1,b:2,c:3/multi', 'multi'],
    ['mongodb://db.internal:27017', 'apikeys'],
    ['mongodb://db.internal:27017/', 'apikeys'],
    ['mongodb://db.internal:27017/?replicaSet=rs0', 'apikeys'],
  ])('%s → %s', (uri, db) => {
    expect(loadConfig({ MONGODB_URI: uri }).mongodbDatabase).toBe(db);
  });

  it('MONGODB_DATABASE wins over the URI path', () => {
    const c = loadConfig({ MONGODB_URI: 'mongodb://h:27017/fromuri', MONGODB_DATABASE: 'explicit' });
    expect(c.mongodbDatabase).toBe('explicit');
    expect(c.mongodbUri).toBe('mongodb://h:27017/fromuri');
  });

  it('validates MONGODB_DATABASE', () => {
    expect(named(configError({ MONGODB_DATABASE: 'has.dot' }))).toEqual(['MONGODB_DATABASE']);
    expect(named(configError({ MONGODB_DATABASE: 'x'.repeat(39) }))).toEqual(['MONGODB_DATABASE']);
  });
});

/** The operations variables (metrics, health, shutdown, transport limits). */
describe('operations settings', () => {
  it('reads every variable', () => {
    const c = loadConfig({
      METRICS_ADDR: '127.0.0.1:0',
      HEALTH_CHECK_INTERVAL_MS: '250',
      SHUTDOWN_GRACE_MS: '0',
      GRPC_MAX_RECEIVE_MESSAGE_BYTES: '4096',
      GRPC_MAX_SEND_MESSAGE_BYTES: '8192',
      GRPC_MAX_METADATA_BYTES: '2048',
      GRPC_KEEPALIVE_TIME_MS: '30000',
      GRPC_KEEPALIVE_TIMEOUT_MS: '5000',
      GRPC_MAX_CONCURRENT_STREAMS: '500',
      GRPC_MAX_CONNECTION_AGE_MS: '1800000',
      GRPC_MAX_CONNECTION_IDLE_MS: '600000',
      GRPC_LEAN_VERIFY: 'off',
    });
    expect(c.metricsAddr).toBe('127.0.0.1:0');
    expect(c.healthCheckIntervalMs).toBe(250);
    expect(c.shutdownGraceMs).toBe(0);
    expect(c.grpc).toEqual({
      maxReceiveMessageBytes: 4096,
      maxSendMessageBytes: 8192,
      maxMetadataBytes: 2048,
      keepaliveTimeMs: 30_000,
      keepaliveTimeoutMs: 5000,
      maxConcurrentStreams: 500,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionIdleMs: 600_000,
      leanVerify: false,
    });
  });

  it.each([
    ['METRICS_ADDR', '9464'],
    ['METRICS_ADDR', 'http://0.0.0.0:9464/metrics'],
    ['HTTP_AUTH_ADDR', '8080'],
    ['HEALTH_CHECK_INTERVAL_MS', '0'],
    ['SHUTDOWN_GRACE_MS', '-1'],
    ['GRPC_MAX_METADATA_BYTES', '70000'], // over Node's 64 KiB HTTP/2 header cap
    ['GRPC_MAX_RECEIVE_MESSAGE_BYTES', '10'],
    ['GRPC_KEEPALIVE_TIME_MS', 'soon'],
    ['GRPC_LEAN_VERIFY', 'yes'],
  ])('rejects %s=%s, naming the variable', (name, value) => {
    expect(named(configError({ [name]: value }))).toEqual([name]);
  });
});

/** How long what accumulates is kept, and how often the sweep runs. */
describe('retention settings', () => {
  it('reads every variable', () => {
    const c = loadConfig({
      USAGE_RETENTION_DAYS: '30',
      AUDIT_RETENTION_DAYS: '90',
      KEY_CHANGE_RETENTION_SECONDS: '120',
      RETENTION_SWEEP_INTERVAL_MS: '300000',
    });
    expect(c.retention).toEqual({ usageDays: 30, auditDays: 90, keyChangeSeconds: 120, sweepIntervalMs: 300_000 });
  });

  it('refuses an audit log kept under 90 days, a change log under a minute, and a sweep rarer than every 5 minutes', () => {
    const e = configError({
      AUDIT_RETENTION_DAYS: '89',
      KEY_CHANGE_RETENTION_SECONDS: '59',
      RETENTION_SWEEP_INTERVAL_MS: '300001',
      USAGE_RETENTION_DAYS: '0',
    });
    expect(e.problems).toEqual([
      expect.stringMatching(/^USAGE_RETENTION_DAYS: /),
      'AUDIT_RETENTION_DAYS: must be at least 90 (days)',
      'KEY_CHANGE_RETENTION_SECONDS: must be at least 60 (seconds)',
      'RETENTION_SWEEP_INTERVAL_MS: must be at most 300000 (5 minutes)',
    ]);
  });
});

/** Formats of keys imported from other systems (the format rules themselves: test/unit/domain/secretFormats.test.ts). */
describe('FOREIGN_KEY_FORMATS', () => {
  it('is none when unset', () => {
    expect(loadConfig({}).foreignKeyFormats).toEqual([]);
  });

  it('compiles the formats given, in order', () => {
    const c = loadConfig({ FOREIGN_KEY_FORMATS });
    expect(c.foreignKeyFormats.map((f) => f.name)).toEqual(['ffy', 'fnp', 'stripe']);
    expect(c.foreignKeyFormats[1].regex.test(`fnp_${'0'.repeat(32)}`)).toBe(true);
  });

  it("stops the start with every problem of the variable, beside other variables' problems", () => {
    const bad = JSON.stringify([FORMATS.fnp, { ...FORMATS.ffy, name: 'fnp' }, { name: 'x', prefix: 'x_', pattern: '(' }]);
    const e = configError({ FOREIGN_KEY_FORMATS: bad, ORG_KEY_LIMIT: '0' });
    expect(named(e)).toEqual(['FOREIGN_KEY_FORMATS', 'ORG_KEY_LIMIT']);
    expect(e.problems.filter((p) => p.startsWith('FOREIGN_KEY_FORMATS'))).toEqual([
      'FOREIGN_KEY_FORMATS: [1].name: duplicate name "fnp"',
      expect.stringMatching(/^FOREIGN_KEY_FORMATS: \[2\]\.pattern: does not compile: /),
    ]);
  });

  it('refuses text that is not JSON, saying so', () => {
    expect(configError({ FOREIGN_KEY_FORMATS: "[{name: 'ffy'}]" }).problems).toEqual([
      expect.stringMatching(/^FOREIGN_KEY_FORMATS: not valid JSON: /),
    ]);
  });
});
