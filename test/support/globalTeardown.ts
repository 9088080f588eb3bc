// Jest globalTeardown: stops the ephemeral database started by globalSetup (if any).
import type { EphemeralDatabase } from '../../src/devdb/ephemeralDatabase';

const HANDLE = Symbol.for('apikeys.test.ephemeralDatabase');

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as Record<symbol, EphemeralDatabase | undefined>;
  const db = holder[HANDLE];
  holder[HANDLE] = undefined;
  await db?.stop();
}
