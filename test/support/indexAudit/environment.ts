// Jest's node environment plus the index audit: once a test file has run — after every test and
// every afterAll hook, so commands sent while servers stop are recorded too — the shapes its
// services sent are checked (recorder.ts). A violation fails the file as an error of the suite,
// which jest counts in numRuntimeErrorTestSuites.
import { TestEnvironment } from 'jest-environment-node';
import type { IndexAuditFinisher } from './recorder';

type Config = ConstructorParameters<typeof TestEnvironment>[0];
type Context = ConstructorParameters<typeof TestEnvironment>[1];

// Symbol.for: the same key recorder.ts uses inside the test file's module registry.
const FINISHER = Symbol.for('apikeys.indexAudit');

export default class IndexAuditEnvironment extends TestEnvironment {
  private readonly testPath: string;

  constructor(config: Config, context: Context) {
    super(config, context);
    this.testPath = context.testPath;
  }

  async handleTestEvent(event: { name: string }, state: { unhandledErrors: unknown[] }): Promise<void> {
    if (event.name !== 'run_finish') return;
    const finisher = (this.global as unknown as Record<symbol, IndexAuditFinisher | undefined>)[FINISHER];
    if (!finisher) return;
    try {
      const violations = await finisher.finish(this.testPath);
      if (violations.length > 0) state.unhandledErrors.push(new Error(violations.join('\n\n')));
    } catch (err) {
      state.unhandledErrors.push(err);
    }
  }
}
