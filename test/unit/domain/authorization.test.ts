import fc from 'fast-check';
import { escalation, type KeyBounds } from '../../../src/domain/authorization';

const base: KeyBounds = { scopes: ['read', 'write'], environment: 'live', expiresAt: null, rateLimit: null, workspaceId: null };
const at = (iso: string) => new Date(iso);

describe('escalation: the one rule for what a holder may act on', () => {
  it.each<[string, Partial<KeyBounds>, Partial<KeyBounds>, string | null]>([
    ['equal keys', {}, {}, null],
    ['fewer scopes', {}, { scopes: ['read'] }, null],
    ['a scope the holder lacks', { scopes: ['write'] }, { scopes: ['read'] }, 'SCOPE_ESCALATION'],
    ['another environment', { environment: 'test' }, { environment: 'live' }, 'ENVIRONMENT_ESCALATION'],
    ['no expiry under a holder that expires', { expiresAt: at('2030-01-01T00:00:00Z') }, {}, 'EXPIRY_ESCALATION'],
    ['a later expiry', { expiresAt: at('2030-01-01T00:00:00Z') }, { expiresAt: at('2030-01-01T00:00:00.001Z') }, 'EXPIRY_ESCALATION'],
    ['the same expiry', { expiresAt: at('2030-01-01T00:00:00Z') }, { expiresAt: at('2030-01-01T00:00:00Z') }, null],
    ['any expiry under a holder that never expires', {}, { expiresAt: at('2099-01-01T00:00:00Z') }, null],
    ['no rate limit under a limited holder', { rateLimit: { limit: 10, windowSeconds: 60 } }, {}, 'RATE_LIMIT_ESCALATION'],
    [
      'a higher limit',
      { rateLimit: { limit: 10, windowSeconds: 60 } },
      { rateLimit: { limit: 11, windowSeconds: 60 } },
      'RATE_LIMIT_ESCALATION',
    ],
    [
      'a shorter window',
      { rateLimit: { limit: 10, windowSeconds: 60 } },
      { rateLimit: { limit: 10, windowSeconds: 59 } },
      'RATE_LIMIT_ESCALATION',
    ],
    ['a stricter limit', { rateLimit: { limit: 10, windowSeconds: 60 } }, { rateLimit: { limit: 5, windowSeconds: 120 } }, null],
    ['a limit under an unlimited holder', {}, { rateLimit: { limit: 1_000_000, windowSeconds: 1 } }, null],
    ['no workspace under a bound holder', { workspaceId: 'ws_a' }, {}, 'WORKSPACE_ESCALATION'],
    ['another workspace', { workspaceId: 'ws_a' }, { workspaceId: 'ws_b' }, 'WORKSPACE_ESCALATION'],
    ['any workspace under an unbound holder', {}, { workspaceId: 'ws_b' }, null],
  ])('%s', (_name, holder, key, reason) => {
    expect(escalation({ ...base, ...holder }, { ...base, ...key })?.reason ?? null).toBe(reason);
  });

  it('names the scopes that are missing', () => {
    expect(escalation({ ...base, scopes: ['write'] }, { ...base, scopes: ['read', 'billing', 'write'] })?.metadata).toEqual({
      scopes: 'read,billing',
    });
  });

  const bounds: fc.Arbitrary<KeyBounds> = fc.record({
    scopes: fc.subarray(['read', 'write', 'billing']),
    environment: fc.constantFrom('live' as const, 'test' as const),
    expiresAt: fc.option(
      fc.integer({ min: 0, max: 10 }).map((d) => new Date(Date.UTC(2030, 0, 1 + d))),
      { nil: null },
    ),
    rateLimit: fc.option(fc.record({ limit: fc.integer({ min: 1, max: 5 }), windowSeconds: fc.integer({ min: 1, max: 5 }) }), {
      nil: null,
    }),
    workspaceId: fc.option(fc.constantFrom('ws_a', 'ws_b'), { nil: null }),
  });

  it('is a partial order: every key dominates itself, and dominance is transitive', () => {
    fc.assert(fc.property(bounds, (k) => escalation(k, k) === null));
    fc.assert(
      fc.property(bounds, bounds, bounds, (a, b, c) => {
        if (escalation(a, b) === null && escalation(b, c) === null) return escalation(a, c) === null;
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it('a holder never dominates a key that holds more in any one dimension', () => {
    fc.assert(
      fc.property(bounds, (h) => {
        const more: KeyBounds[] = [
          { ...h, scopes: [...h.scopes, 'admin'] },
          { ...h, environment: h.environment === 'live' ? 'test' : 'live' },
          ...(h.expiresAt
            ? [
                { ...h, expiresAt: null },
                { ...h, expiresAt: new Date(h.expiresAt.getTime() + 1) },
              ]
            : []),
          ...(h.rateLimit
            ? [
                { ...h, rateLimit: null },
                { ...h, rateLimit: { ...h.rateLimit, limit: h.rateLimit.limit + 1 } },
                ...(h.rateLimit.windowSeconds > 1
                  ? [{ ...h, rateLimit: { ...h.rateLimit, windowSeconds: h.rateLimit.windowSeconds - 1 } }]
                  : []),
              ]
            : []),
          ...(h.workspaceId
            ? [
                { ...h, workspaceId: null },
                { ...h, workspaceId: `${h.workspaceId}x` },
              ]
            : []),
        ];
        return more.every((k) => escalation(h, k) !== null);
      }),
    );
  });
});
