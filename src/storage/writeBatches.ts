/**
 * Most documents one write command may name. FerretDB 1.24 on SQLite locks up for good when one
 * update command carries 100 or more statements on existing documents (measured: 99 answer in
 * ~0.2 s, 100 never, and every later query waits behind them; docs/operations.md). 50 keeps a
 * margin below that and still writes 50 documents per round trip. Deletes stay under it too.
 */
export const MAX_DOCUMENTS_PER_WRITE = 50;

/** `items` in consecutive slices of at most `size`. */
export function chunks<T>(items: readonly T[], size = MAX_DOCUMENTS_PER_WRITE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
