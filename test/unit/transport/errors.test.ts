import { Writable } from 'node:stream';
import { Metadata, status } from '@grpc/grpc-js';
import { decodeStatusDetails } from '../../../src/client/statusDetails';
import { DomainError, REASONS, keyNotFound, validationError } from '../../../src/domain/errors';
import { Status } from '../../../src/gen/google/rpc/status';
import { createLogger } from '../../../src/logging/logger';
import { ERROR_DOMAIN, REASON_STATUS, toDomainError, toServiceError, toStatus } from '../../../src/transport/errors';

const DETAILS_KEY = 'grpc-status-details-bin';

/** A pino logger writing JSON lines into an array. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', { destination: sink }), lines };
}

function rawStatus(metadata: Metadata): Status {
  const [raw] = metadata.get(DETAILS_KEY);
  expect(Buffer.isBuffer(raw)).toBe(true);
  return Status.decode(raw as Buffer);
}

describe('toStatus / decodeStatusDetails', () => {
  it('encodes ErrorInfo (reason, domain, metadata) and reads it back', () => {
    const err = keyNotFound('key_123');
    const s = toStatus(err);
    expect(s.code).toBe(status.NOT_FOUND);
    expect(s.details).toBe('key key_123 not found');

    const decoded = rawStatus(s.metadata);
    expect(decoded.code).toBe(status.NOT_FOUND);
    expect(decoded.message).toBe('key key_123 not found');
    expect(decoded.details.map((d) => d.typeUrl)).toEqual(['type.googleapis.com/google.rpc.ErrorInfo']);

    expect(decodeStatusDetails({ metadata: s.metadata })).toEqual({
      errorInfo: { reason: 'KEY_NOT_FOUND', domain: ERROR_DOMAIN, metadata: { key_id: 'key_123' } },
    });
    expect(ERROR_DOMAIN).toBe('apikeys.v1');
  });

  it('adds BadRequest with every field violation', () => {
    const err = validationError([
      { field: 'name', reason: 'NAME_REQUIRED', description: 'name is required' },
      { field: 'metadata["a"]', reason: 'INVALID_METADATA', description: 'value too long' },
    ]);
    const s = toStatus(err);
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(rawStatus(s.metadata).details.map((d) => d.typeUrl)).toEqual([
      'type.googleapis.com/google.rpc.ErrorInfo',
      'type.googleapis.com/google.rpc.BadRequest',
    ]);
    const { errorInfo, badRequest } = decodeStatusDetails({ metadata: s.metadata });
    expect(errorInfo).toEqual({ reason: 'NAME_REQUIRED', domain: 'apikeys.v1', metadata: {} });
    expect(badRequest?.fieldViolations).toEqual([
      expect.objectContaining({ field: 'name', reason: 'NAME_REQUIRED', description: 'name is required' }),
      expect.objectContaining({ field: 'metadata["a"]', reason: 'INVALID_METADATA', description: 'value too long' }),
    ]);
  });

  it('round-trips non-ASCII messages and metadata', () => {
    const err = new DomainError('KEY_REVOKED', 'clé révoquée — 🔑', [], { comment: 'ünïcødé', empty: '' });
    const s = toStatus(err);
    expect(rawStatus(s.metadata).message).toBe('clé révoquée — 🔑');
    expect(decodeStatusDetails({ metadata: s.metadata }).errorInfo?.metadata).toEqual({ comment: 'ünïcødé', empty: '' });
  });

  it.each(REASONS)('%s encodes to its table code', (reason) => {
    const s = toStatus(new DomainError(reason, 'm'));
    expect(s.code).toBe(REASON_STATUS[reason].code);
    expect(rawStatus(s.metadata).code).toBe(REASON_STATUS[reason].code);
    expect(decodeStatusDetails({ metadata: s.metadata }).errorInfo?.reason).toBe(reason);
  });

  it('decodeStatusDetails returns {} when there are no details', () => {
    expect(decodeStatusDetails({})).toEqual({});
    expect(decodeStatusDetails({ metadata: new Metadata() })).toEqual({});
  });

  it('toServiceError carries the same code, message and trailers', () => {
    const err = keyNotFound('key_x');
    const se = toServiceError(err);
    expect(se).toMatchObject({ code: status.NOT_FOUND, details: err.message, message: err.message });
    expect(decodeStatusDetails({ metadata: se.metadata }).errorInfo?.reason).toBe('KEY_NOT_FOUND');
  });
});

describe('REASON_STATUS', () => {
  it('has exactly one row per reason', () => {
    expect(Object.keys(REASON_STATUS).sort()).toEqual([...REASONS].sort());
    expect(new Set(REASONS).size).toBe(REASONS.length);
  });

  it.each(REASONS)('%s maps to an error code and an HTTP error status', (reason) => {
    const row = REASON_STATUS[reason];
    expect(Object.values(status)).toContain(row.code);
    expect(row.code).not.toBe(status.OK);
    expect(row.http).toBeGreaterThanOrEqual(400);
    expect(row.http).toBeLessThan(600);
  });

  it('all INVALID_* validation reasons are INVALID_ARGUMENT / 422', () => {
    for (const r of REASONS.filter((x) => x.startsWith('INVALID_') && !['INVALID_TOKEN', 'INVALID_API_KEY'].includes(x))) {
      expect([r, REASON_STATUS[r]]).toEqual([r, { code: status.INVALID_ARGUMENT, http: 422 }]);
    }
  });

  it.each([
    ['UNAUTHENTICATED', status.UNAUTHENTICATED, 401],
    ['PERMISSION_DENIED', status.PERMISSION_DENIED, 403],
    ['KEY_NOT_FOUND', status.NOT_FOUND, 404],
    ['RATE_LIMITED', status.RESOURCE_EXHAUSTED, 429],
    ['STORAGE_UNAVAILABLE', status.UNAVAILABLE, 503],
    ['INTERNAL', status.INTERNAL, 500],
  ] as const)('%s → code %i, http %i', (reason, code, http) => {
    expect(REASON_STATUS[reason]).toEqual({ code, http });
  });
});

describe('toDomainError', () => {
  const named = (name: string, message: string) => Object.assign(new Error(message), { name });

  it('passes DomainErrors through unchanged, without logging', () => {
    const { logger, lines } = capturingLogger();
    const err = keyNotFound('key_1');
    expect(toDomainError(err, logger)).toBe(err);
    expect(lines).toHaveLength(0);
  });

  it.each([
    'MongoServerSelectionError',
    'MongoNetworkError',
    'MongoNetworkTimeoutError',
    'MongoNotConnectedError',
    'MongoTopologyClosedError',
  ])('%s → STORAGE_UNAVAILABLE, logged as a warning', (name) => {
    const { logger, lines } = capturingLogger();
    const out = toDomainError(named(name, 'connect ECONNREFUSED 10.1.2.3:27017'), logger);
    expect(out).toBeInstanceOf(DomainError);
    expect(out.reason).toBe('STORAGE_UNAVAILABLE');
    expect(out.message).not.toContain('10.1.2.3');
    expect(out.fieldViolations).toEqual([]);
    expect(out.metadata).toEqual({});
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'storage unavailable', err: { name } });
  });

  it('a query that ran past its maxTimeMS (MaxTimeMSExpired, code 50) → STORAGE_UNAVAILABLE', () => {
    const { logger } = capturingLogger();
    const expired = Object.assign(named('MongoServerError', 'operation exceeded time limit'), { code: 50 });
    expect(toDomainError(expired, logger).reason).toBe('STORAGE_UNAVAILABLE');
    const other = Object.assign(named('MongoServerError', 'E11000 duplicate key'), { code: 11000 });
    expect(toDomainError(other, logger).reason).toBe('INTERNAL');
  });

  it('a driver error that is not about reachability is INTERNAL', () => {
    const { logger } = capturingLogger();
    expect(toDomainError(named('MongoServerError', 'E11000 duplicate key'), logger).reason).toBe('INTERNAL');
  });

  it('an unknown error → INTERNAL with a fixed message; the details go only to the log', () => {
    const { logger, lines } = capturingLogger();
    const leak = 'Cannot read properties of undefined (reading "hash") at /srv/app/dist/keys.js:42 sk_live_abc';
    const out = toDomainError(new TypeError(leak), logger);
    expect(out).toBeInstanceOf(DomainError);
    expect(out.reason).toBe('INTERNAL');
    expect(out.message).toBe('internal error');
    expect(out.metadata).toEqual({});
    expect(out.fieldViolations).toEqual([]);
    const s = toStatus(out);
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toContain('hash');
    expect(Buffer.from(s.metadata.get(DETAILS_KEY)[0] as Buffer).toString('latin1')).not.toContain('/srv/app');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'unexpected error' });
    expect(JSON.stringify(lines[0])).toContain('/srv/app/dist/keys.js');
  });

  it.each([['a string'], [null], [undefined], [42], [{ name: 'NotMongo' }]])('non-Error %p → INTERNAL', (thrown) => {
    const { logger, lines } = capturingLogger();
    const out = toDomainError(thrown, logger);
    expect(out.reason).toBe('INTERNAL');
    expect(out.message).toBe('internal error');
    expect(lines).toHaveLength(1);
  });

  it('a plain object named like a driver error is still treated as unavailable', () => {
    const { logger } = capturingLogger();
    expect(toDomainError({ name: 'MongoServerSelectionError', message: 'x' }, logger).reason).toBe('STORAGE_UNAVAILABLE');
  });
});
