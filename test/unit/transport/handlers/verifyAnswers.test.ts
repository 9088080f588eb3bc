// VerifyKey answers encoded once per cache entry: the bytes a client gets are exactly those the
// generated encoder makes of the same response, whatever was kept.
import { verifiedKey } from '../../../../src/domain/keyCache';
import type { VerifyResult } from '../../../../src/domain/verification';
import { VerifyKeyResponse } from '../../../../src/gen/apikeys/v1/verify_service';
import { VerifyAnswers } from '../../../../src/transport/handlers/verifyService';
import { fakeKey } from '../../domain/fakeKey';

const entry = (over: Parameters<typeof fakeKey>[0] = {}) => verifiedKey(fakeKey(over), 0);
const reference = (r: VerifyKeyResponse) => Buffer.from(VerifyKeyResponse.encode(r).finish());

describe('VerifyAnswers', () => {
  it('encodes every kind of result as the generated encoder does', () => {
    const answers = new VerifyAnswers();
    const key = entry({
      metadata: { plan: 'pro' },
      scopes: ['read', 'write'],
      expires_at: new Date('2030-01-01T00:00:00Z'),
      workspace_id: 'wsp_01jabcdefghjkmnpqrstvwxyz0',
    });
    const results: VerifyResult[] = [
      { code: 'VALID', key },
      { code: 'MALFORMED' },
      { code: 'NOT_FOUND' },
      { code: 'REVOKED', key: entry({ status: 'revoked' }) },
      { code: 'INSUFFICIENT_SCOPE', key },
      { code: 'VALID', key, rate: { allowed: true, limit: 10, remaining: 7, resetAt: 1_900_000_000_000 } },
      { code: 'RATE_LIMITED', key, rate: { allowed: false, limit: 10, remaining: 0, resetAt: 1_900_000_000_000 } },
    ];
    for (const r of results) {
      const a = answers.answer(r);
      expect(VerifyKeyResponse.decode(answers.serialize(a))).toEqual(VerifyKeyResponse.decode(reference(a)));
      expect(answers.serialize(a)).toEqual(reference(a));
    }
  });

  it('sends the age of the key state with a kept answer, as the generated encoder would with the field set', () => {
    const answers = new VerifyAnswers();
    const key = entry({ metadata: { plan: 'pro' } });
    for (const stateAgeMs of [0, 1, 999, 1_000, 2_345]) {
      const sent = answers.sendable({ code: 'VALID', key, stateAgeMs });
      const expected = VerifyKeyResponse.decode(reference({ ...answers.answer({ code: 'VALID', key }), keyStateAge: sent.keyStateAge }));
      expect(VerifyKeyResponse.decode(answers.serialize(sent))).toEqual(expected);
      expect(expected.keyStateAge).toEqual({ seconds: Math.floor(stateAgeMs / 1000), nanos: (stateAgeMs % 1000) * 1e6 });
    }
    expect(VerifyKeyResponse.decode(answers.serialize(answers.sendable({ code: 'NOT_FOUND' }))).keyStateAge).toBeUndefined();
  });

  it('keeps one answer per entry and code; a changed key is a new entry with its own answer', () => {
    const answers = new VerifyAnswers();
    const v1 = entry();
    const first = answers.answer({ code: 'VALID', key: v1 });
    expect(answers.answer({ code: 'VALID', key: v1 })).toBe(first);
    expect(answers.answer({ code: 'NOT_FOUND' })).toBe(answers.answer({ code: 'NOT_FOUND' }));
    const scoped = answers.answer({ code: 'INSUFFICIENT_SCOPE', key: v1 });
    expect(scoped.valid).toBe(false);
    const v2 = entry({ scopes: ['read', 'write'], etag: 'e2' });
    expect(answers.answer({ code: 'VALID', key: v2 }).scopes).toEqual(['read', 'write']);
    // Rate-limit figures change with every call: never kept.
    const rate = { allowed: true, limit: 5, remaining: 4, resetAt: 1_900_000_000_000 };
    expect(answers.answer({ code: 'VALID', key: v1, rate })).not.toBe(answers.answer({ code: 'VALID', key: v1, rate }));
  });

  it('keeps answers for a bounded number of entries, the oldest leaving first', () => {
    const answers = new VerifyAnswers();
    const first = entry();
    const kept = answers.answer({ code: 'VALID', key: first });
    for (let i = 0; i < 1024; i++) answers.answer({ code: 'VALID', key: entry() });
    const again = answers.answer({ code: 'VALID', key: first });
    expect(again).not.toBe(kept);
    expect(answers.serialize(again)).toEqual(answers.serialize(kept));
  });
});
