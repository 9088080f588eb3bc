// Per-test-file database on the server chosen by globalSetup.
import { randomBytes } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { startEphemeralDatabase, type EphemeralDatabase } from '../../src/devdb/ephemeralDatabase';

export interface TestDatabase {
  client: MongoClient;
  db: Db;
  uri: string;
  dbName: string;
  drop(): Promise<void>;
  close(): Promise<void>;
}

// FerretDB 1.24 accepts [A-Za-z0-9_-]{1,63}; MongoDB < 64 bytes; Atlas shared tiers 38.
// Staying within 38 of [a-z0-9_] keeps names valid everywhere.
const MAX_DB_NAME = 38;

/** A new database on the suite's server, or on `uri` (a private server a test started). */
export async function testDb(name: string, uri = process.env.TEST_MONGODB_URI): Promise<TestDatabase> {
  if (!uri) {
    throw new Error('TEST_MONGODB_URI is not set: jest globalSetup (test/support/globalSetup.ts) did not run.');
  }
  const dbName = uniqueDbName(name);
  const client = await MongoClient.connect(uri);
  const db = client.db(dbName);
  return {
    client,
    db,
    uri,
    dbName,
    drop: async () => {
      await db.dropDatabase();
    },
    close: () => client.close(),
  };
}

function uniqueDbName(name: string): string {
  const suffix = randomBytes(4).toString('hex');
  const room = MAX_DB_NAME - 't__'.length - suffix.length;
  const base = name
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .slice(0, room);
  return `t_${base}_${suffix}`;
}

/** A database server a test may kill and restart. */
export type PrivateDatabase = EphemeralDatabase & Required<Pick<EphemeralDatabase, 'kill' | 'restart'>>;

/**
 * A database server of the test's own, for tests that kill it or lock it up (the suite's is
 * shared). Only FerretDB can be killed and restarted, so only FerretDB is accepted.
 */
export async function privateDatabase(): Promise<PrivateDatabase> {
  const db = await startEphemeralDatabase();
  if (db.kind !== 'ferretdb' || !db.kill || !db.restart) {
    await db.stop();
    throw new Error(`this test needs a FerretDB of its own, which it can kill and restart (tools/ferretdb); got ${db.description}`);
  }
  return db as PrivateDatabase;
}
