/** Secrets remembered at most: more than the keys gateways verify again and again. */
const MAX_REMEMBERED = 1024;

/**
 * The lookup hashes of secrets found in the Verify cache, by the exact secret presented. Gateways
 * verify the same keys again and again, and recognising and hashing one (format, CRC32, SHA-256)
 * cost ~1 µs of every cached VerifyKey, with the strings and objects it made. A pure memo of
 * classifySecret's hash: a secret's answer is still the Verify cache's, looked up by that hash on
 * every call, so revocation and every invalidation work as before. Only secrets whose hash named a
 * cached key get in, so a flood of made-up secrets (well-formed or not) never enters; at most
 * MAX_REMEMBERED, the oldest leaving first. Memory only, never logged.
 */
export class SecretHashes {
  private readonly bySecret = new Map<string, string>();

  constructor(private readonly max = MAX_REMEMBERED) {}

  get(secret: string): string | undefined {
    return this.bySecret.get(secret);
  }

  /** `hash` is the lookup hash of `secret` and named a key the cache holds. */
  remember(secret: string, hash: string): void {
    if (this.bySecret.has(secret)) return;
    if (this.bySecret.size >= this.max) {
      const oldest = this.bySecret.keys().next(); // Maps iterate in insertion order
      if (!oldest.done) this.bySecret.delete(oldest.value);
    }
    this.bySecret.set(secret, hash);
  }

  get size(): number {
    return this.bySecret.size;
  }
}
