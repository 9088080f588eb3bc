// Jest globalSetup: one real MongoDB-wire server for the whole run (MONGODB_URI, else FerretDB,
// else mongodb-memory-server). Test files read TEST_MONGODB_URI (workers inherit process.env) and each
// use their own database via testDb(). Never skips: with no database, the run fails here.
import { MongoClient } from 'mongodb';
import { startEphemeralDatabase, type EphemeralDatabase } from '../../src/devdb/ephemeralDatabase';

const HANDLE = Symbol.for('apikeys.test.ephemeralDatabase');

export default async function globalSetup(): Promise<void> {
  const configured = process.env.MONGODB_URI;
  let uri: string;
  let description: string;
  if (configured) {
    uri = withoutDatabaseName(configured);
    description = `MongoDB from MONGODB_URI at ${redact(configured)}`;
  } else {
    // Progress goes to stderr so that stdout carries only the "Test database:" and "Index audit:" lines.
    const db = await startEphemeralDatabase({ log: (line) => process.stderr.write(`[test db] ${line}\n`) });
    (globalThis as Record<symbol, EphemeralDatabase>)[HANDLE] = db;
    uri = db.uri;
    description = db.description;
  }

  const { version, ferretdb } = await serverVersion(uri, configured !== undefined);
  process.env.TEST_MONGODB_URI = uri;
  process.env.TEST_DATABASE_KIND = `${description}, buildInfo version ${version}`;
  // The index audit (test/support/indexAudit) also explains each query shape where plans use indexes.
  process.env.TEST_INDEX_AUDIT_EXPLAIN = ferretdb ? '0' : '1';
  process.stdout.write(`\nTest database: ${process.env.TEST_DATABASE_KIND}\n`);
  process.stdout.write(
    ferretdb
      ? 'Index audit: explain-checking is off because FerretDB does not use indexes; query shapes are checked against the declared indexes only.\n'
      : 'Index audit: query shapes are checked against the declared indexes and by explain (no COLLSCAN, no in-memory SORT).\n',
  );
}

// Proves the server answers (loud failure for a bad MONGODB_URI) and reads its reported version.
async function serverVersion(uri: string, fromEnv: boolean): Promise<{ version: string; ferretdb: boolean }> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return { version: String(info.version), ferretdb: info.ferretdbVersion !== undefined };
  } catch (err) {
    const source = fromEnv ? `MONGODB_URI (${redact(uri)})` : `the test database at ${uri}`;
    throw new Error(
      `Cannot reach ${source}: ${err instanceof Error ? err.message : String(err)}\n` +
        (fromEnv ? 'Fix the URI or start that server, or unset MONGODB_URI to use an ephemeral FerretDB.' : ''),
      { cause: err },
    );
  } finally {
    await client.close();
  }
}

// Test files pick their own database, so drop the one in MONGODB_URI (production's default is
// .../apikeys). When credentials rely on it as their auth database, keep it as authSource.
export function withoutDatabaseName(uri: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(uri);
  if (!m) return uri; // let the driver report a malformed URI
  const [, hosts, dbName = '', query = ''] = m;
  const params = query ? query.split('&') : [];
  if (dbName && hosts.includes('@') && !params.some((p) => p.toLowerCase().startsWith('authsource='))) {
    params.push(`authSource=${dbName}`);
  }
  return `${hosts}/${params.length ? `?${params.join('&')}` : ''}`;
}

// Credentials must not end up in CI logs.
function redact(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}
