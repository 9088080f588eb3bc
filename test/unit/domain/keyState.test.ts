import { documentState } from '../../../src/domain/keyState';
import type { KeyStatus } from '../../../src/domain/model';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const past = new Date(NOW.getTime() - 1);
const future = new Date(NOW.getTime() + 1);

describe('keyState', () => {
  it.each<[KeyStatus, Date | null, string]>([
    ['active', null, 'ACTIVE'],
    ['active', future, 'ACTIVE'],
    ['active', past, 'EXPIRED'],
    ['active', new Date(NOW), 'EXPIRED'], // expires_at is exclusive: at that instant it is expired
    ['archived', null, 'ARCHIVED'],
    ['archived', past, 'ARCHIVED'],
    ['archived', future, 'ARCHIVED'],
    ['revoked', null, 'REVOKED'],
    ['revoked', past, 'REVOKED'],
    ['revoked', future, 'REVOKED'],
  ])('status %s, expires_at %p → %s', (status, expires_at, expected) => {
    expect(documentState({ status, expires_at }, NOW)).toBe(expected);
  });

  it('depends on the clock passed in, not the wall clock', () => {
    const doc = { status: 'active' as const, expires_at: new Date('2000-01-01T00:00:00Z') };
    expect(documentState(doc, new Date('1999-12-31T23:59:59Z'))).toBe('ACTIVE');
    expect(documentState(doc, new Date('2000-01-01T00:00:00Z'))).toBe('EXPIRED');
  });
});
