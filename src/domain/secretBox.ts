import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { SealedSecret } from './model';

/** Full 128-bit GCM tags only; `seal` always writes 16 bytes. */
const TAG_LENGTH = 16;

/**
 * AES-256-GCM for recoverable secrets. The current key seals; it and any previous keys open,
 * so the encryption key can be rotated without losing stored secrets. `kid` names the key
 * (a hash prefix, not the key) in each sealed value.
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  private readonly current: Buffer;
  private readonly currentKid: string;

  constructor(current: Buffer, previous: Buffer[] = []) {
    this.current = current;
    this.currentKid = kidOf(current);
    for (const k of [current, ...previous]) this.keys.set(kidOf(k), k);
  }

  seal(plaintext: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      kid: this.currentKid,
      iv: iv.toString('base64'),
      ciphertext: ciphertext.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
    };
  }

  /** Throws when the sealing key is not configured any more or the value was tampered with. */
  open(box: SealedSecret): string {
    const key = this.keys.get(box.kid);
    if (!key) throw new Error(`secret sealed with unknown encryption key ${box.kid}`);
    // Pin the tag length: GCM otherwise accepts a tag truncated to as little as 4 bytes.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'), { authTagLength: TAG_LENGTH });
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(box.ciphertext, 'base64')), decipher.final()]).toString('utf8');
  }
}

function kidOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}
