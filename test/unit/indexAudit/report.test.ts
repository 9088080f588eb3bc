// The markdown report of recorded shapes (test/support/indexAudit/report.ts).
import type { IndexSpec } from '../../support/indexAudit/indexes';
import type { RecordingFile } from '../../support/indexAudit/recorder';
import { reportMarkdown } from '../../support/indexAudit/report';
import { queriesOf } from '../../support/indexAudit/shapes';

const declared: IndexSpec[] = [{ collection: 'api_keys', name: 'hash_unique', key: [['hash', 1]], unique: true }];
const recorded = (testFile: string, filter: object, site: string): RecordingFile => {
  const [q] = queriesOf('find', { find: 'api_keys', filter });
  return {
    testFile,
    shapes: [{ key: JSON.stringify(q.shape), shape: q.shape, commands: ['find'], callSites: [site], count: 1, inPoints: 1 }],
  };
};

describe('reportMarkdown', () => {
  const markdown = reportMarkdown(
    [
      recorded('a.test.ts', { hash: 'x' }, 'KeyRepository.findByHash (src/storage/keyRepository.ts:54)'),
      recorded('b.test.ts', { hash: 'y' }, 'KeyRepository.findByHash (src/storage/keyRepository.ts:55)'),
      recorded('b.test.ts', { name: 'n' }, 'KeyRepository.findByName (src/storage/keyRepository.ts:60)'),
    ],
    declared,
  );

  it('gives one row per shape over all test files, naming call sites without lines', () => {
    expect(markdown).toContain('| `api_keys` | find | `hash =` |  | `hash_unique` | — | `KeyRepository.findByHash` |');
  });

  it('says when a shape has no serving index', () => {
    expect(markdown).toContain(
      '| `api_keys` | find | `name =` |  | **none**: collection scan: no index starts with a field of name = | — | `KeyRepository.findByName` |',
    );
  });

  it('lists each declared index with the number of shapes it serves', () => {
    expect(markdown).toContain('| `api_keys` | `hash_unique` (unique) | `{hash: 1}` | 1 shape |');
    expect(markdown).toContain('| `api_keys` | `_id_` (unique) | `{_id: 1}` | no query shape seen |');
  });
});
