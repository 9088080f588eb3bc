import { createHash, randomBytes } from 'node:crypto';
import { SecretBox } from '../../../src/domain/secretBox';
import type { SealedSecret } from '../../../src/domain/model';

const SECRET = 'sk_live_0123456789ABCDEFGHIJKLMNOPQRSTUVabcdef';

/** `b64` with one bit flipped in byte `i`. */
function flip(b64: string, i = 0): string {
  const buf = Buffer.from(b64, 'base64');
  buf[i] ^= 0x01;
  return buf.toString('base64');
}

describe('SecretBox', () => {
  const key = randomBytes(32);

  it.each([SECRET, '', 'ünïcødé 🔑', 'x'.repeat(10_000)])('round-trips %#', (plaintext) => {
    const box = new SecretBox(key);
    expect(box.open(box.seal(plaintext))).toBe(plaintext);
  });

  it('stores no plaintext and names the key by a hash prefix, not the key', () => {
    const sealed = new SecretBox(key).seal(SECRET);
    expect(JSON.stringify(sealed)).not.toContain(SECRET);
    expect(sealed.kid).toBe(createHash('sha256').update(key).digest('hex').slice(0, 12));
    expect(Buffer.from(sealed.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(sealed.tag, 'base64')).toHaveLength(16);
    expect(Buffer.from(sealed.ciphertext, 'base64')).toHaveLength(Buffer.byteLength(SECRET));
  });

  it('two seals of the same plaintext differ (random IV)', () => {
    const box = new SecretBox(key);
    const a = box.seal(SECRET);
    const b = box.seal(SECRET);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(a.kid).toBe(b.kid);
    expect(box.open(a)).toBe(box.open(b));
  });

  describe('tampering is detected', () => {
    const box = new SecretBox(key);
    const sealed = box.seal(SECRET);

    it.each<[string, (s: SealedSecret) => SealedSecret]>([
      ['a flipped ciphertext bit', (s) => ({ ...s, ciphertext: flip(s.ciphertext, 5) })],
      ['a flipped tag bit', (s) => ({ ...s, tag: flip(s.tag, 15) })],
      ['a flipped IV bit', (s) => ({ ...s, iv: flip(s.iv) })],
      ['a truncated ciphertext', (s) => ({ ...s, ciphertext: Buffer.from(s.ciphertext, 'base64').subarray(1).toString('base64') })],
      ['an empty tag', (s) => ({ ...s, tag: '' })],
      // GCM tags may legally be 4–16 bytes; a truncated tag would make forgery far cheaper.
      ['a tag truncated to 4 bytes', (s) => ({ ...s, tag: Buffer.from(s.tag, 'base64').subarray(0, 4).toString('base64') })],
      ['a tag truncated to 12 bytes', (s) => ({ ...s, tag: Buffer.from(s.tag, 'base64').subarray(0, 12).toString('base64') })],
    ])('%s', (_label, tamper) => {
      expect(() => box.open(tamper(sealed))).toThrow();
      expect(box.open(sealed)).toBe(SECRET); // the original still opens
    });

    it('a box sealed by another key under a forged kid does not open', () => {
      const other = new SecretBox(randomBytes(32)).seal(SECRET);
      expect(() => box.open({ ...other, kid: sealed.kid })).toThrow();
    });
  });

  describe('key rotation', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedWithOld = new SecretBox(oldKey).seal(SECRET);

    it('opens a box sealed with an old key passed as previous, and seals with the new one', () => {
      const box = new SecretBox(newKey, [oldKey]);
      expect(box.open(sealedWithOld)).toBe(SECRET);
      const resealed = box.seal(SECRET);
      expect(resealed.kid).not.toBe(sealedWithOld.kid);
      expect(new SecretBox(newKey).open(resealed)).toBe(SECRET);
      expect(() => new SecretBox(oldKey).open(resealed)).toThrow(/unknown encryption key/);
    });

    it('throws for an unknown kid, naming the kid', () => {
      expect(() => new SecretBox(newKey).open(sealedWithOld)).toThrow(`secret sealed with unknown encryption key ${sealedWithOld.kid}`);
      expect(() => new SecretBox(newKey, [randomBytes(32)]).open(sealedWithOld)).toThrow(/unknown encryption key/);
    });
  });
});
