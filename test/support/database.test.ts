// Proves the test database is a real MongoDB-wire server: writes, unique indexes, E11000.
import { MongoServerError } from 'mongodb';
import { testDb, type TestDatabase } from './database';

describe('test database', () => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await testDb('support.database-test, with a long and unusual name!');
  });

  afterAll(async () => {
    await t?.drop();
    await t?.close();
  });

  it('has a valid, unique, short database name', () => {
    expect(t.dbName).toMatch(/^t_[a-z0-9_]+_[0-9a-f]{8}$/);
    expect(t.dbName.length).toBeLessThanOrEqual(38);
  });

  it('stores documents and enforces unique indexes with code 11000', async () => {
    const things = t.db.collection<{ key: string; n: number }>('things');
    await things.createIndex({ key: 1 }, { unique: true }, {});
    await things.insertOne({ key: 'a', n: 1 });

    const duplicate = await things.insertOne({ key: 'a', n: 2 }).catch((err: unknown) => err);
    expect(duplicate).toBeInstanceOf(MongoServerError);
    expect((duplicate as MongoServerError).code).toBe(11000);

    const found = await things.find({ key: 'a' }).toArray();
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ key: 'a', n: 1 });
  });
});
