// Which stack frame names a command's call site.
import { join } from 'node:path';
import { ROOT, siteIn, TEST_CODE } from '../../support/indexAudit/recorder';

const frame = (fn: string, file: string, line: number) => ({ fn, file: join(ROOT, file), line });

describe('siteIn', () => {
  it('names the first frame in src/storage/, past the driver and the wrapper', () => {
    const frames = [
      frame('Collection.find', 'node_modules/mongodb/lib/collection.js', 300),
      frame('methods.<computed>', 'test/support/indexAudit/recorder.ts', 140),
      frame('KeyRepository.list', 'src/storage/keyRepository.ts', 62),
      frame('KeyManager.list', 'src/domain/keys.ts', 165),
    ];
    expect(siteIn(frames)).toBe('KeyRepository.list (src/storage/keyRepository.ts:62)');
  });

  it('falls back to the first frame in src/ when no storage frame is on the stack', () => {
    expect(
      siteIn([
        frame('Collection.find', 'node_modules/mongodb/lib/collection.js', 300),
        frame('KeyManager.list', 'src/domain/keys.ts', 165),
      ]),
    ).toBe('KeyManager.list (src/domain/keys.ts:165)');
  });

  it("tells test code that queries through the service's client apart (the audit leaves it out)", () => {
    const wrapper = frame('methods.<computed>', 'test/support/indexAudit/recorder.ts', 140);
    expect(
      siteIn([
        frame('Collection.find', 'node_modules/mongodb/lib/collection.js', 300),
        wrapper,
        frame('Object.<anonymous>', 'test/integration/fault.test.ts', 147),
      ]),
    ).toBe(TEST_CODE);
  });

  it('finds none in a stack of only the driver and the wrapper', () => {
    expect(
      siteIn([
        frame('Collection.find', 'node_modules/mongodb/lib/collection.js', 300),
        frame('methods.<computed>', 'test/support/indexAudit/recorder.ts', 140),
      ]),
    ).toBeUndefined();
  });
});
