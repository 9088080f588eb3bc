import fc from 'fast-check';
import { DomainError, type FieldViolation, type Reason } from '../../../src/domain/errors';
import { newId } from '../../../src/domain/ids';
import {
  type CreateKeyInput,
  LIMITS,
  UPDATABLE_FIELDS,
  normalizePageSize,
  validateAuditFilter,
  validateCreateKey,
  validateOptionalTime,
  validateOverlap,
  validateUpdateKey,
  durationProblem,
  timestampProblem,
} from '../../../src/domain/validation';
import { createInput, updateInput } from './requests';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const METADATA_KEY = /^[A-Za-z0-9_-]{1,64}$/;

/** The DomainError `fn` throws; fails the test if it returns or throws anything else. */
function domainError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error('expected a DomainError, got a return');
}

const pairs = (e: DomainError) => e.fieldViolations.map((v: FieldViolation) => [v.field, v.reason]);

describe('validateCreateKey', () => {
  it('normalizes a valid request', () => {
    const expireTime = new Date(NOW.getTime() + 60_000);
    const out = validateCreateKey(
      createInput({
        name: '  ci deploy key \t',
        scopes: ['read', 'keys:write', 'read'],
        environment: '',
        expireTime,
        metadata: { team: 'payments', 'cost-center_1': '42' },
        workspaceId: 'ws_1',
        requestId: '0b6f8d9e-1c2a-4e3b-9f0d-5a6b7c8d9e0f',
        allowSelfRevoke: true,
        recoverable: true,
        rateLimit: { limit: 10, windowSeconds: 60 },
      }),
      NOW,
    );
    expect(out).toEqual({
      name: 'ci deploy key',
      scopes: ['read', 'keys:write'],
      environment: 'live',
      expiresAt: expireTime,
      metadata: { team: 'payments', 'cost-center_1': '42' },
      workspaceId: 'ws_1',
      allowSelfRevoke: true,
      recoverable: true,
      requestId: '0b6f8d9e-1c2a-4e3b-9f0d-5a6b7c8d9e0f',
      rateLimit: { limit: 10, window_seconds: 60 },
    });
  });

  it('maps empty optional fields to null', () => {
    const out = validateCreateKey(createInput({ environment: 'test' }), NOW);
    expect(out.environment).toBe('test');
    expect(out.workspaceId).toBeNull();
    expect(out.requestId).toBeNull();
    expect(out.expiresAt).toBeNull();
    expect(out.rateLimit).toBeNull();
  });

  it('de-duplicates scopes keeping first occurrence order', () => {
    expect(validateCreateKey(createInput({ scopes: ['b', 'a', 'b', 'a', 'c'] }), NOW).scopes).toEqual(['b', 'a', 'c']);
  });

  it.each<[string, Partial<CreateKeyInput>, string, Reason]>([
    ['empty name', { name: '' }, 'name', 'NAME_REQUIRED'],
    ['blank name', { name: ' \t\n ' }, 'name', 'NAME_REQUIRED'],
    ['long name', { name: 'x'.repeat(LIMITS.nameMax + 1) }, 'name', 'NAME_TOO_LONG'],
    ['control char in name', { name: 'a\u0007b' }, 'name', 'INVALID_NAME'],
    ['DEL in name', { name: 'a\u007fb' }, 'name', 'INVALID_NAME'],
    ['no scopes', { scopes: [] }, 'scopes', 'INVALID_SCOPES'],
    ['uppercase scope', { scopes: ['read', 'Write'] }, 'scopes[1]', 'INVALID_SCOPES'],
    ['scope starting with digit', { scopes: ['1read'] }, 'scopes[0]', 'INVALID_SCOPES'],
    ['bad environment', { environment: 'prod' }, 'environment', 'INVALID_ENVIRONMENT'],
    ['past expiry', { expireTime: new Date(NOW.getTime() - 1) }, 'expire_time', 'INVALID_EXPIRE_TIME'],
    ['expiry equal to now', { expireTime: new Date(NOW) }, 'expire_time', 'INVALID_EXPIRE_TIME'],
    ['invalid date', { expireTime: new Date(Number.NaN) }, 'expire_time', 'INVALID_TIMESTAMP'],
    // 10^12 seconds: a valid JavaScript Date (year 33658) that no RFC 3339 conversion can express.
    ['expiry past year 9999', { expireTime: new Date(1e15) }, 'expire_time', 'INVALID_TIMESTAMP'],
    [
      'expiry one ms past the range',
      { expireTime: new Date(Date.parse('9999-12-31T23:59:59.999Z') + 1) },
      'expire_time',
      'INVALID_TIMESTAMP',
    ],
    ['bad workspace id', { workspaceId: 'ws 1' }, 'workspace_id', 'INVALID_WORKSPACE_ID'],
    ['long workspace id', { workspaceId: 'w'.repeat(65) }, 'workspace_id', 'INVALID_WORKSPACE_ID'],
    ['bad request id', { requestId: 'req/1' }, 'request_id', 'INVALID_REQUEST_ID'],
    ['zero rate limit', { rateLimit: { limit: 0, windowSeconds: 60 } }, 'rate_limit.limit', 'INVALID_RATE_LIMIT'],
    [
      'rate limit above max',
      { rateLimit: { limit: LIMITS.rateLimitMax + 1, windowSeconds: 60 } },
      'rate_limit.limit',
      'INVALID_RATE_LIMIT',
    ],
    ['zero rate window', { rateLimit: { limit: 1, windowSeconds: 0 } }, 'rate_limit.window_seconds', 'INVALID_RATE_LIMIT'],
    [
      'rate window above a day',
      { rateLimit: { limit: 1, windowSeconds: LIMITS.rateWindowMaxSeconds + 1 } },
      'rate_limit.window_seconds',
      'INVALID_RATE_LIMIT',
    ],
  ])('%s → %s %s', (_label, over, field, reason) => {
    const e = domainError(() => validateCreateKey(createInput(over), NOW));
    expect(pairs(e)).toEqual([[field, reason]]);
    expect(e.reason).toBe(reason);
    expect(e.message).toContain(field);
  });

  it('accepts the boundary values', () => {
    const out = validateCreateKey(
      createInput({
        name: `  ${'x'.repeat(LIMITS.nameMax)}  `, // trimmed before the length check
        scopes: Array.from({ length: LIMITS.scopesMax }, (_, i) => `s${i}`),
        expireTime: new Date(NOW.getTime() + 1),
        workspaceId: 'w'.repeat(64),
        rateLimit: { limit: LIMITS.rateLimitMax, windowSeconds: LIMITS.rateWindowMaxSeconds },
      }),
      NOW,
    );
    expect(out.name).toHaveLength(LIMITS.nameMax);
    expect(out.scopes).toHaveLength(LIMITS.scopesMax);
  });

  it('reports too many scopes once, and still checks the first 32', () => {
    const scopes = Array.from({ length: LIMITS.scopesMax + 1 }, (_, i) => (i === 3 ? 'BAD' : `s${i}`));
    const e = domainError(() => validateCreateKey(createInput({ scopes }), NOW));
    expect(pairs(e)).toEqual([
      ['scopes', 'INVALID_SCOPES'],
      ['scopes[3]', 'INVALID_SCOPES'],
    ]);
  });

  it('reports every violation at once, in field order, with the first as the error reason', () => {
    const e = domainError(() =>
      validateCreateKey(
        createInput({
          name: '',
          scopes: [],
          environment: 'staging',
          expireTime: new Date(0),
          metadata: { 'a.b': 'x' },
          workspaceId: '!',
          requestId: '!',
          rateLimit: { limit: -1, windowSeconds: -1 },
        }),
        NOW,
      ),
    );
    expect(pairs(e)).toEqual([
      ['name', 'NAME_REQUIRED'],
      ['scopes', 'INVALID_SCOPES'],
      ['environment', 'INVALID_ENVIRONMENT'],
      ['expire_time', 'INVALID_EXPIRE_TIME'],
      ['metadata', 'INVALID_METADATA'],
      ['workspace_id', 'INVALID_WORKSPACE_ID'],
      ['request_id', 'INVALID_REQUEST_ID'],
      ['rate_limit.limit', 'INVALID_RATE_LIMIT'],
      ['rate_limit.window_seconds', 'INVALID_RATE_LIMIT'],
    ]);
    expect(e.reason).toBe('NAME_REQUIRED');
    for (const v of e.fieldViolations) expect(v.description.length).toBeGreaterThan(0);
  });

  describe('metadata', () => {
    const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

    it(`accepts ${LIMITS.metadataEntriesMax} entries and rejects ${LIMITS.metadataEntriesMax + 1}`, () => {
      expect(Object.keys(validateCreateKey(createInput({ metadata: entries(16) }), NOW).metadata)).toHaveLength(16);
      const e = domainError(() => validateCreateKey(createInput({ metadata: entries(17) }), NOW));
      expect(pairs(e)).toEqual([['metadata', 'INVALID_METADATA']]);
      expect(e.fieldViolations[0].description).toMatch(/16/);
    });

    it.each([['$where'], ['$set'], ['a.b'], ['.'], [''], ['has space'], ['k'.repeat(65)], ['ключ'], ['a\u0000b']])(
      'rejects key %j',
      (key) => {
        const e = domainError(() => validateCreateKey(createInput({ metadata: { [key]: 'v' } }), NOW));
        expect(pairs(e)).toEqual([['metadata', 'INVALID_METADATA']]);
      },
    );

    it('accepts a 64-character key and a 512-character value', () => {
      const key = 'k'.repeat(64);
      const value = 'v'.repeat(LIMITS.metadataValueMax);
      expect(validateCreateKey(createInput({ metadata: { [key]: value } }), NOW).metadata).toEqual({ [key]: value });
    });

    it('rejects a too-long value or a NUL in a value, naming the entry', () => {
      const e = domainError(() =>
        validateCreateKey(createInput({ metadata: { long: 'v'.repeat(LIMITS.metadataValueMax + 1), nul: 'a\u0000' } }), NOW),
      );
      expect(pairs(e)).toEqual([
        ['metadata["long"]', 'INVALID_METADATA'],
        ['metadata["nul"]', 'INVALID_METADATA'],
      ]);
    });

    it('property: a metadata key reaching storage always matches ^[A-Za-z0-9_-]{1,64}$', () => {
      const suspicious = fc.constantFrom('$gt', '$where', 'a.b', 'a$', '__proto__', 'constructor', '', ' ', '\u0000', 'a'.repeat(65));
      const keyArb = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 70 }),
        fc.string({ unit: 'grapheme', maxLength: 10 }),
        fc.stringMatching(METADATA_KEY),
        suspicious,
      );
      fc.assert(
        fc.property(fc.dictionary(keyArb, fc.string({ maxLength: 8 }), { maxKeys: LIMITS.metadataEntriesMax }), (metadata) => {
          const badKeys = Object.keys(metadata).filter((k) => !METADATA_KEY.test(k));
          let out;
          try {
            out = validateCreateKey(createInput({ metadata }), NOW);
          } catch (err) {
            expect(err).toBeInstanceOf(DomainError);
            const e = err as DomainError;
            expect(e.reason).toBe('INVALID_METADATA');
            expect(e.fieldViolations.every((v) => v.reason === 'INVALID_METADATA')).toBe(true);
            // It throws only when some key is bad, and reports each bad one.
            expect(e.fieldViolations).toHaveLength(badKeys.length);
            expect(badKeys.length).toBeGreaterThan(0);
            return;
          }
          expect(badKeys).toEqual([]);
          for (const k of Object.keys(out.metadata)) {
            expect(k).toMatch(METADATA_KEY);
            expect(k).not.toMatch(/[$.]/);
          }
          expect(Object.keys(out.metadata).sort()).toEqual(Object.keys(metadata).sort());
        }),
        { numRuns: 500 },
      );
    });
  });
});

describe('validateUpdateKey', () => {
  it('requires a non-empty mask', () => {
    const e = domainError(() => validateUpdateKey(updateInput({ name: 'x' }), [], NOW));
    expect(pairs(e)).toEqual([['update_mask', 'INVALID_UPDATE_MASK']]);
    for (const f of UPDATABLE_FIELDS) expect(e.fieldViolations[0].description).toContain(f);
  });

  it.each(['status', 'id', 'org_id', 'environment', 'hash', 'Name', ''])('rejects mask path %j', (path) => {
    const e = domainError(() => validateUpdateKey(updateInput({ name: 'x' }), ['name', path], NOW));
    expect(pairs(e)).toEqual([['update_mask', 'INVALID_UPDATE_MASK']]);
    expect(e.fieldViolations[0].description).toContain(`"${path}"`);
  });

  it('reads only masked fields: unmasked invalid values are ignored', () => {
    const out = validateUpdateKey(
      updateInput({ name: '  renamed  ', scopes: ['NOT VALID'], metadata: { 'a.b': 'x' }, expireTime: new Date(0) }),
      ['name'],
      NOW,
    );
    expect(out).toEqual({ name: 'renamed' });
  });

  it('validates each masked field with the create rules', () => {
    const e = domainError(() =>
      validateUpdateKey(
        updateInput({ name: '', scopes: [], metadata: { $x: '1' }, expireTime: new Date(0), rateLimit: { limit: 0, windowSeconds: 1 } }),
        [...UPDATABLE_FIELDS],
        NOW,
      ),
    );
    expect(pairs(e)).toEqual([
      ['name', 'NAME_REQUIRED'],
      ['scopes', 'INVALID_SCOPES'],
      ['metadata', 'INVALID_METADATA'],
      ['expire_time', 'INVALID_EXPIRE_TIME'],
      ['rate_limit.limit', 'INVALID_RATE_LIMIT'],
    ]);
  });

  it('reports a bad mask path together with a bad masked value', () => {
    const e = domainError(() => validateUpdateKey(updateInput({ name: '' }), ['name', 'status'], NOW));
    expect(pairs(e)).toEqual([
      ['update_mask', 'INVALID_UPDATE_MASK'],
      ['name', 'NAME_REQUIRED'],
    ]);
  });

  it('clears expire_time, rate_limit and metadata when masked but unset', () => {
    expect(validateUpdateKey(updateInput(), ['expire_time', 'rate_limit', 'metadata'], NOW)).toEqual({
      expires_at: null,
      rate_limit: null,
      metadata: {},
    });
  });

  it('returns de-duplicated scopes and a snake_case rate limit', () => {
    expect(
      validateUpdateKey(
        updateInput({ scopes: ['a', 'a', 'b'], rateLimit: { limit: 5, windowSeconds: 10 } }),
        ['scopes', 'rate_limit'],
        NOW,
      ),
    ).toEqual({ scopes: ['a', 'b'], rate_limit: { limit: 5, window_seconds: 10 } });
  });
});

describe('validateOverlap', () => {
  const limits = { maxOverlapSeconds: 3600, defaultOverlapSeconds: 600 };

  it('uses the configured default when unset', () => {
    expect(validateOverlap(undefined, limits)).toBe(600_000);
    expect(validateOverlap(undefined, { ...limits, defaultOverlapSeconds: 0 })).toBe(0);
  });

  it('0 means revoke at once', () => {
    expect(validateOverlap({ seconds: 0, nanos: 0 }, limits)).toBe(0);
  });

  it('converts seconds and nanos to ms (nanos floored)', () => {
    expect(validateOverlap({ seconds: 2, nanos: 500_999_999 }, limits)).toBe(2_500);
  });

  it('accepts exactly the maximum and rejects one ms more', () => {
    expect(validateOverlap({ seconds: 3600, nanos: 0 }, limits)).toBe(3_600_000);
    const e = domainError(() => validateOverlap({ seconds: 3600, nanos: 1_000_000 }, limits));
    expect(pairs(e)).toEqual([['overlap', 'INVALID_OVERLAP']]);
    expect(e.fieldViolations[0].description).toContain('3600');
  });

  it.each([[{ seconds: -1, nanos: 0 }], [{ seconds: 0, nanos: -1_000_000 }], [{ seconds: -1, nanos: -500_000_000 }]])(
    'rejects the negative %j: INVALID_OVERLAP',
    (overlap) => {
      expect(pairs(domainError(() => validateOverlap(overlap, limits)))).toEqual([['overlap', 'INVALID_OVERLAP']]);
    },
  );

  it.each([
    [{ seconds: 5, nanos: -1 }, 'same sign'],
    [{ seconds: -5, nanos: 1 }, 'same sign'],
    [{ seconds: 0, nanos: 1_000_000_000 }, 'nanos'],
    [{ seconds: 0, nanos: 2_000_000_000 }, 'nanos'],
    [{ seconds: 0, nanos: -1_000_000_000 }, 'nanos'],
    [{ seconds: 315_576_000_001, nanos: 0 }, 'seconds'],
    [{ seconds: 2 ** 53, nanos: 0 }, 'seconds'],
    [{ seconds: Number.NaN, nanos: 0 }, 'seconds'],
    [{ seconds: Number.POSITIVE_INFINITY, nanos: 0 }, 'seconds'],
    [{ seconds: 1, nanos: 0.5 }, 'nanos'],
  ])('rejects %j, not a valid Duration (%s): INVALID_DURATION', (overlap, about) => {
    const e = domainError(() => validateOverlap(overlap, limits));
    expect(pairs(e)).toEqual([['overlap', 'INVALID_DURATION']]);
    expect(e.fieldViolations[0].description).toContain(about);
  });
});

describe('timestampProblem / durationProblem: the well-known types’ own ranges', () => {
  it.each([[{ seconds: -62_135_596_800, nanos: 0 }], [{ seconds: 253_402_300_799, nanos: 999_999_999 }], [{ seconds: 0, nanos: 0 }]])(
    'a Timestamp %j is valid',
    (t) => {
      expect(timestampProblem(t)).toBeUndefined();
    },
  );

  it.each([
    [{ seconds: -62_135_596_801, nanos: 999_999_999 }],
    [{ seconds: 253_402_300_800, nanos: 0 }],
    [{ seconds: 1e12, nanos: 0 }],
    [{ seconds: 2 ** 53, nanos: 0 }],
    [{ seconds: 0, nanos: -1 }],
    [{ seconds: 0, nanos: 1_000_000_000 }],
    [{ seconds: 0, nanos: 2_000_000_000 }],
    [{ seconds: 1.5, nanos: 0 }],
  ])('a Timestamp %j is not', (t) => {
    expect(timestampProblem(t)).toEqual(expect.any(String));
  });

  it.each([
    [{ seconds: 315_576_000_000, nanos: 999_999_999 }, true],
    [{ seconds: -315_576_000_000, nanos: -999_999_999 }, true],
    [{ seconds: 0, nanos: -5 }, true],
    [{ seconds: -315_576_000_001, nanos: 0 }, false],
    [{ seconds: 1, nanos: -1 }, false],
  ])('a Duration %j is valid: %s', (d, valid) => {
    expect(durationProblem(d) === undefined).toBe(valid);
  });
});

describe('validateOptionalTime', () => {
  it('passes unset and in-range times through', () => {
    expect(validateOptionalTime(undefined, 'unused_since')).toBeUndefined();
    const first = new Date('0001-01-01T00:00:00.000Z');
    const last = new Date('9999-12-31T23:59:59.999Z');
    expect(validateOptionalTime(first, 'unused_since')).toBe(first);
    expect(validateOptionalTime(last, 'unused_since')).toBe(last);
  });

  it.each([new Date(Number.NaN), new Date(1e15), new Date('0000-12-31T23:59:59.999Z')])('refuses %s: INVALID_TIMESTAMP', (t) => {
    expect(pairs(domainError(() => validateOptionalTime(t, 'unused_since')))).toEqual([['unused_since', 'INVALID_TIMESTAMP']]);
  });
});

describe('normalizePageSize', () => {
  it.each([
    [0, LIMITS.pageSizeDefault],
    [1, 1],
    [20, 20],
    [100, 100],
    [101, 100],
    [1000, 100],
  ])('%i → %i', (given, expected) => {
    expect(normalizePageSize(given)).toBe(expected);
  });

  it.each([-1, -100])('rejects %i', (n) => {
    expect(pairs(domainError(() => normalizePageSize(n)))).toEqual([['page_size', 'INVALID_PAGE_SIZE']]);
  });
});

describe('validateAuditFilter', () => {
  const keyId = newId('key', NOW.getTime());
  const empty = { action: '', keyId: '' };

  it('accepts an empty filter and a full valid one', () => {
    expect(() => validateAuditFilter(empty)).not.toThrow();
    expect(() => validateAuditFilter({ action: 'key.create', keyId, startTime: new Date(0), endTime: NOW })).not.toThrow();
    expect(() => validateAuditFilter({ ...empty, startTime: NOW, endTime: new Date(NOW) })).not.toThrow();
  });

  it.each<[string, Parameters<typeof validateAuditFilter>[0], string, Reason]>([
    ['uppercase action', { action: 'Key.Create', keyId: '' }, 'action', 'INVALID_AUDIT_FILTER'],
    ['action with a $', { action: 'key.$create', keyId: '' }, 'action', 'INVALID_AUDIT_FILTER'],
    ['org id as key id', { action: '', keyId: newId('org', NOW.getTime()) }, 'key_id', 'INVALID_ID'],
    ['garbage key id', { action: '', keyId: 'key_123' }, 'key_id', 'INVALID_ID'],
    ['invalid start', { action: '', keyId: '', startTime: new Date(Number.NaN) }, 'start_time', 'INVALID_TIMESTAMP'],
    ['invalid end', { action: '', keyId: '', endTime: new Date(Number.NaN) }, 'end_time', 'INVALID_TIMESTAMP'],
    ['end past year 9999', { action: '', keyId: '', endTime: new Date(1e15) }, 'end_time', 'INVALID_TIMESTAMP'],
    [
      'end before start',
      { action: '', keyId: '', startTime: NOW, endTime: new Date(NOW.getTime() - 1) },
      'end_time',
      'INVALID_AUDIT_FILTER',
    ],
  ])('%s → %s %s', (_label, filter, field, reason) => {
    expect(pairs(domainError(() => validateAuditFilter(filter)))).toEqual([[field, reason]]);
  });

  it('reports every violation at once', () => {
    const e = domainError(() => validateAuditFilter({ action: 'X', keyId: 'nope', startTime: NOW, endTime: new Date(0) }));
    expect(pairs(e)).toEqual([
      ['action', 'INVALID_AUDIT_FILTER'],
      ['key_id', 'INVALID_ID'],
      ['end_time', 'INVALID_AUDIT_FILTER'],
    ]);
  });
});
