import type { Collection } from 'mongodb';
import { newId } from '../../src/domain/ids';
import { describeSecret, generateSecret } from '../../src/domain/keyFormat';
import type { KeyDocument } from '../../src/storage/documents';
import { chunks } from '../../src/storage/writeBatches';

/**
 * Stores `count` copies of a key the service created, each with its own id and secret, in inserts
 * of at most 50 documents: many keys in the service's exact shape, far faster than CreateKey.
 * Returns the secrets, in insertion order.
 */
export async function storeKeyCopies(keys: Collection<KeyDocument>, model: KeyDocument, count: number): Promise<string[]> {
  const secrets = Array.from({ length: count }, () => generateSecret('sk', 'live'));
  for (const part of chunks(secrets)) {
    await keys.insertMany(
      part.map((secret) => {
        const d = describeSecret(secret);
        return { ...model, _id: newId('key'), hash: d.hash, start: d.start, masked_key: d.maskedKey, fingerprint: d.fingerprint };
      }),
    );
  }
  return secrets;
}
