// docs/indexes.md against the code: its index table is what ensureIndexes declares, and every
// index its query-shape table names exists. The shapes themselves come from a recorded run
// (test/support/indexAudit/report.ts); this test needs no database.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectionNames, declaredIndexes, describeKey, indexesOn } from '../../support/indexAudit/indexes';
import { INDEX_TABLE_HEADER, SHAPE_TABLE_HEADER } from '../../support/indexAudit/report';
import { tableRows } from '../../support/markdown';

const DOC = 'docs/indexes.md';
const markdown = readFileSync(join(__dirname, '..', '..', '..', DOC), 'utf8');
const unquote = (cell: string) => cell.replace(/`/g, '').trim();
const REGENERATE = 'regenerate the tables: npx jest --runInBand test/integration && npx tsx test/support/indexAudit/report.ts';

describe(DOC, () => {
  it('lists exactly the indexes ensureIndexes declares, with their keys', async () => {
    const declared = await declaredIndexes();
    const expected = collectionNames().flatMap((c) =>
      indexesOn(c, declared).map((i) => `${c} ${i.name}${i.unique ? ' (unique)' : ''} ${describeKey(i)}`),
    );
    const documented = tableRows(markdown, INDEX_TABLE_HEADER, DOC).map(([c, i, k]) => `${unquote(c)} ${unquote(i)} ${unquote(k)}`);
    expect({ documented: documented.sort(), hint: REGENERATE }).toEqual({ documented: expected.sort(), hint: REGENERATE });
  });

  it('has every query shape served by an index that is declared on its collection', async () => {
    const declared = await declaredIndexes();
    const rows = tableRows(markdown, SHAPE_TABLE_HEADER, DOC);
    expect(rows.length).toBeGreaterThan(0);
    const unknown = rows.flatMap(([collection, , , , index]) => {
      const names = new Set(indexesOn(unquote(collection), declared).map((i) => i.name));
      return index
        .split('<br>')
        .map((cell) => unquote(cell.replace(' (SORT_MERGE)', '')))
        .filter((name) => !names.has(name))
        .map((name) => `${unquote(collection)}: ${name}`);
    });
    expect({ unknown, hint: REGENERATE }).toEqual({ unknown: [], hint: REGENERATE });
  });
});
