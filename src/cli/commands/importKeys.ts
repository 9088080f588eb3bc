import { readFileSync } from 'node:fs';
import { statusDetails } from '../../client/statusDetails';
import { ImportedKey, ImportKeyResult, ImportKeysResponse } from '../../gen/apikeys/v1/key_service';
import { EXIT, UsageError, type Command, type Ctx } from '../command';
import { asJson, table } from '../output';

// Importing keys issued by another system, from a file an export of that system was turned into.

/** The server takes at most this many keys per call: a longer file is sent in calls of this many. */
const KEYS_PER_CALL = 100;

/**
 * The file's keys: a JSON array of ImportedKey objects (proto3 JSON, camelCase or snake_case
 * field names), an object with such a `keys` array, or JSON lines of one object each. Errors
 * never quote the file: its lines hold secrets.
 */
export function readImportFile(path: string): ImportedKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let items: unknown[];
  try {
    const whole: unknown = JSON.parse(text);
    const keys = isObject(whole) && Array.isArray(whole.keys) ? (whole.keys as unknown[]) : undefined;
    items = Array.isArray(whole) ? whole : (keys ?? [whole]);
  } catch {
    items = text.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line) as unknown];
      } catch {
        throw new UsageError(`${path}: line ${i + 1} is not a JSON object (one key per line, or one JSON array of keys)`);
      }
    });
  }
  if (items.length === 0) throw new UsageError(`${path} holds no keys`);
  return items.map((item, i) => {
    if (!isObject(item)) throw new UsageError(`${path}: key ${i + 1} is not a JSON object`);
    return ImportedKey.fromJSON(item);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One row per key, in file order: the key it became, or why not. */
function resultTable(results: ImportKeyResult[]): string {
  return table(
    ['#', 'RESULT', 'NAME', 'KEY'],
    results.map((r, i) => {
      const n = String(i + 1);
      if (r.result?.$case === 'key') return [n, r.result.value.id, r.result.value.name, r.result.value.maskedKey];
      const reason = r.result ? (statusDetails(r.result.value).errorInfo?.reason ?? String(r.result.value.code)) : '?';
      return [n, reason, '-', r.result?.$case === 'error' ? r.result.value.message : '-'];
    }),
  );
}

export const importKeys: Command = {
  summary: 'import keys issued by another system, without rotating them (a JSON or JSON-lines file)',
  usage: 'import FILE',
  options: {},
  args: ['FILE'],
  needsToken: true,
  async run(c) {
    const keys = readImportFile(c.args[0]);
    const results: ImportKeyResult[] = [];
    for (let from = 0; from < keys.length; from += KEYS_PER_CALL) {
      try {
        const res = await c.conn.keys.importKeys({ keys: keys.slice(from, from + KEYS_PER_CALL) }, c.conn.md(), c.conn.opts);
        results.push(...res.results);
      } catch (err) {
        if (from > 0) stopped(c, results, from, Math.min(from + KEYS_PER_CALL, keys.length));
        throw err;
      }
    }
    c.io.out(c.json ? asJson(ImportKeysResponse.toJSON({ results })) : resultTable(results));
    // Any key refused (already stored, limit reached) is the server refusing part of the work.
    return results.every((r) => r.result?.$case === 'key') ? EXIT.OK : EXIT.SERVER;
  },
};

/** A call after the first was refused as a whole: what the earlier calls did, before the refusal is reported. */
function stopped(c: Ctx, results: ImportKeyResult[], from: number, to: number): void {
  if (c.json) {
    c.io.out(asJson({ ...(ImportKeysResponse.toJSON({ results }) as object), refusedFrom: from + 1, refusedTo: to }));
    return;
  }
  c.io.out(resultTable(results));
  c.io.err(
    `keyctl: keys 1–${from} were sent (above); the call with keys ${from + 1}–${to} was refused (its keys[0] is key ${from + 1}):\n`,
  );
}
