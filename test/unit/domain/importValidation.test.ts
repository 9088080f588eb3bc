import { DomainError } from '../../../src/domain/errors';
import { validateImport, type ImportedKeyInput } from '../../../src/domain/importValidation';
import { hashSecret } from '../../../src/domain/keyFormat';
import { compileForeignFormats } from '../../../src/domain/secretFormats';
import { FORMATS, foreignSecret } from '../../support/foreignFormats';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const { formats } = compileForeignFormats(Object.values(FORMATS));

const entry = (over: Partial<ImportedKeyInput> = {}): ImportedKeyInput => ({
  secret: foreignSecret('ffy'),
  format: 'ffy',
  name: 'imported',
  scopes: ['read'],
  environment: '',
  metadata: {},
  workspaceId: '',
  start: '',
  ...over,
});

/** The field violations validateImport throws for `entries`, as "field:REASON". */
function violations(entries: ImportedKeyInput[]): string[] {
  try {
    validateImport(entries, formats, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return (err as DomainError).fieldViolations.map((v) => `${v.field}:${v.reason}`);
  }
  throw new Error('expected validateImport to refuse');
}

describe('validateImport', () => {
  it('keeps of a secret only its hash and what is shown: start (default the prefix), masked key, fingerprint', () => {
    const secret = foreignSecret('ffy', 'test');
    const [v] = validateImport([entry({ secret, scopes: ['read', 'read'] })], formats, NOW);
    const hash = hashSecret(secret);
    expect(v).toEqual({
      key: expect.objectContaining({ name: 'imported', scopes: ['read'], environment: 'test', allowSelfRevoke: false, recoverable: false }),
      format: 'ffy',
      shown: { hash, start: 'ffy_', maskedKey: `ffy_…${secret.slice(-4)}`, fingerprint: hash.slice(0, 6) },
      createdAt: null,
      lastUsedAt: null,
    });
    expect(JSON.stringify(v)).not.toContain(secret.slice(9));
  });

  it('takes a hash as given, shows no tail of a secret it never saw, and the environment from the request', () => {
    const hash = hashSecret(foreignSecret('fnp'));
    const [v] = validateImport(
      [entry({ secret: undefined, secretSha256: hash, format: 'fnp', environment: 'test', start: 'fnp_1a2b' })],
      formats,
      NOW,
    );
    expect(v.shown).toEqual({ hash, start: 'fnp_1a2b', maskedKey: 'fnp_1a2b…', fingerprint: hash.slice(0, 6) });
    expect(v.key.environment).toBe('test');
  });

  it('keeps the 4 last characters out of the masked key when too little of the secret would stay hidden', () => {
    const secret = foreignSecret('ffy').slice(0, 'ffy_live_'.length + 20); // the shortest body ffy allows
    const [v] = validateImport([entry({ secret, start: secret.slice(0, 16) })], formats, NOW);
    expect(v.shown.maskedKey).toBe(`${secret.slice(0, 16)}…`);
  });

  it('keeps create and last-use times of the past', () => {
    const createTime = new Date('2021-01-01T00:00:00Z');
    const lastUsedTime = new Date('2025-05-31T00:00:00Z');
    const [v] = validateImport([entry({ createTime, lastUsedTime })], formats, NOW);
    expect(v).toMatchObject({ createdAt: createTime, lastUsedAt: lastUsedTime });
  });

  it('refuses no keys, and more than 100, as a whole', () => {
    expect(violations([])).toEqual(['keys:INVALID_ARGUMENT']);
    expect(violations(Array.from({ length: 101 }, () => entry()))).toEqual(['keys:INVALID_ARGUMENT']);
  });

  it("names every violation of every entry keys[i].field, CreateKey's own checks included", () => {
    expect(
      violations([
        entry(),
        entry({ format: 'unkey' }),
        entry({ secret: 'ffy_live_short' }),
        entry({ secret: undefined }),
        entry({ secret: undefined, secretSha256: 'ABC' }),
        entry({ name: ' ', scopes: ['Bad Scope'], metadata: { 'a.b': 'x' }, rateLimit: { limit: 0, windowSeconds: 60 } }),
        entry({
          expireTime: new Date(NOW.getTime() - 1),
          createTime: new Date(NOW.getTime() + 1),
          lastUsedTime: new Date(NOW.getTime() + 1),
        }),
      ]),
    ).toEqual([
      'keys[1].format:INVALID_KEY_FORMAT',
      'keys[2].secret:INVALID_KEY_FORMAT',
      'keys[3].secret:INVALID_ARGUMENT',
      'keys[4].secret_sha256:INVALID_ARGUMENT',
      'keys[5].name:NAME_REQUIRED',
      'keys[5].scopes[0]:INVALID_SCOPES',
      'keys[5].metadata:INVALID_METADATA',
      'keys[5].rate_limit.limit:INVALID_RATE_LIMIT',
      'keys[6].expire_time:INVALID_EXPIRE_TIME',
      'keys[6].create_time:INVALID_TIMESTAMP',
      'keys[6].last_used_time:INVALID_TIMESTAMP',
    ]);
  });

  it('never quotes the secret in a refusal', () => {
    const secret = `ffy_live_${'0'.repeat(30)}`;
    try {
      validateImport([entry({ secret })], formats, NOW);
      throw new Error('expected a refusal');
    } catch (err) {
      expect(JSON.stringify({ message: (err as Error).message, v: (err as DomainError).fieldViolations })).not.toContain('0'.repeat(8));
    }
  });

  it('refuses an environment other than the one the secret names', () => {
    expect(violations([entry({ secret: foreignSecret('stripe', 'test'), format: 'stripe', environment: 'live' })])).toEqual([
      'keys[0].environment:INVALID_ENVIRONMENT',
    ]);
  });

  it('refuses a secret in another configured format than the one named', () => {
    expect(violations([entry({ secret: foreignSecret('fnp'), format: 'ffy' })])).toEqual(['keys[0].secret:INVALID_KEY_FORMAT']);
  });

  it('refuses a start that is too long, not of the format, or not how the secret begins', () => {
    const secret = foreignSecret('ffy');
    expect(
      violations([
        entry({ secret, start: secret.slice(0, 17) }),
        entry({ start: 'fnp_' }),
        entry({ start: 'ffy_test_' }),
        entry({ start: 'ffy_\n' }),
      ]),
    ).toEqual([
      'keys[0].start:INVALID_ARGUMENT',
      'keys[1].start:INVALID_ARGUMENT',
      'keys[2].start:INVALID_ARGUMENT',
      'keys[3].start:INVALID_ARGUMENT',
    ]);
  });

  it('refuses the same key twice in one request, by secret or by hash', () => {
    const secret = foreignSecret('ffy');
    expect(violations([entry({ secret }), entry(), entry({ secret: undefined, secretSha256: hashSecret(secret) })])).toEqual([
      'keys[2].secret_sha256:INVALID_ARGUMENT',
    ]);
  });
});
