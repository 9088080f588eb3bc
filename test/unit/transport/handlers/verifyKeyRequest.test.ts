// VerifyKey's own request decoder answers exactly as the generated one: the same message, or the
// same throw, whatever the bytes.
import fc from 'fast-check';
import { VerifyKeyRequest } from '../../../../src/gen/apikeys/v1/verify_service';
import { decodeVerifyKeyRequest } from '../../../../src/transport/handlers/verifyService';

/** The generated decoder's outcome: its message, or the error it threw. */
function outcome(decode: (b: Buffer) => VerifyKeyRequest, bytes: Buffer): { message: VerifyKeyRequest } | { threw: string } {
  try {
    return { message: decode(bytes) };
  } catch (err) {
    return { threw: err instanceof Error ? err.message : String(err) };
  }
}

const same = (bytes: Buffer) => expect(outcome(decodeVerifyKeyRequest, bytes)).toEqual(outcome((b) => VerifyKeyRequest.decode(b), bytes));
const encoded = (r: VerifyKeyRequest) => Buffer.from(VerifyKeyRequest.encode(r).finish());

describe('decodeVerifyKeyRequest', () => {
  it('reads the usual request itself, without the generated decoder', () => {
    const r = { key: 'sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD', requiredScopes: ['read', 'write'] };
    const bytes = encoded(r);
    const generated = jest.spyOn(VerifyKeyRequest, 'decode');
    try {
      expect(decodeVerifyKeyRequest(bytes)).toEqual(r);
      expect(generated).not.toHaveBeenCalled();
    } finally {
      generated.mockRestore();
    }
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    [
      'a repeated key (the last one counts)',
      Buffer.concat([encoded({ key: 'a', requiredScopes: [] }), encoded({ key: 'b', requiredScopes: ['x'] })]),
    ],
    ['non-ASCII text', encoded({ key: 'sk_live_é', requiredScopes: ['読み'] })],
    ['invalid UTF-8', Buffer.from([0x0a, 0x02, 0xc3, 0x28])],
    ['an unknown field', Buffer.from([0x0a, 0x01, 0x61, 0x18, 0x05])],
    ['a length past the end', Buffer.from([0x0a, 0x05, 0x61])],
    ['a truncated length', Buffer.from([0x0a, 0x80])],
    ['a non-minimal length', Buffer.from([0x0a, 0x81, 0x00, 0x61])],
    ['tag 0', Buffer.from([0x00, 0x0a, 0x01, 0x61])],
    ['a huge length', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
  ])('%s: as the generated decoder', (_what, bytes) => same(bytes));

  it('any request, and any bytes: as the generated decoder', () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 20 }));
    fc.assert(
      fc.property(fc.record({ key: text, requiredScopes: fc.array(text, { maxLength: 4 }) }), (r) => same(encoded(r))),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => same(Buffer.from(b))),
      { numRuns: 2_000 },
    );
    const usual = fc.array(fc.constantFrom(0x0a, 0x12, 0x01, 0x61, 0x80, 0x7f, 0xff, 0x00), { maxLength: 24 });
    fc.assert(
      fc.property(usual, (b) => same(Buffer.from(b))),
      { numRuns: 2_000 },
    );
  });
});
