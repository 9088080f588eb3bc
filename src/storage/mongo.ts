import { MongoClient, MongoServerError, type Collection, type Db, type Document } from 'mongodb';
import type { Logger } from '../logging/logger';
import type {
  AuditEventDocument,
  CreateRequestDocument,
  KeyChangeDocument,
  KeyDocument,
  KeyLastUsedDocument,
  KeyMutationDocument,
  KeySlotCapDocument,
  KeySlotDocument,
  KeyUsageDocument,
  OrganizationDocument,
  RateCounterDocument,
} from './documents';

export interface Collections {
  keys: Collection<KeyDocument>;
  organizations: Collection<OrganizationDocument>;
  slots: Collection<KeySlotDocument>;
  slotCaps: Collection<KeySlotCapDocument>;
  usage: Collection<KeyUsageDocument>;
  lastUsed: Collection<KeyLastUsedDocument>;
  mutations: Collection<KeyMutationDocument>;
  createRequests: Collection<CreateRequestDocument>;
  audit: Collection<AuditEventDocument>;
  changes: Collection<KeyChangeDocument>;
  rateCounters: Collection<RateCounterDocument>;
}

/** The call a query is made for: when its caller stops waiting, and a signal for when it has gone. */
export interface QueryCaller {
  /** Milliseconds since the epoch; Infinity when the caller set no deadline. */
  deadline?: number;
  signal?: AbortSignal;
}

/**
 * What every query carries so the database never works for nobody: a time limit of
 * MONGODB_OPERATION_TIMEOUT_MS, cut to the calling RPC's deadline, and that RPC's abort signal
 * (the driver stops waiting when the client cancels). Background work has no caller: the limit alone.
 */
export class QueryLimits {
  constructor(
    private readonly maxTimeMS: number,
    private readonly currentCaller: () => QueryCaller | undefined = () => undefined,
  ) {}

  options(): { maxTimeMS: number; signal?: AbortSignal } {
    const caller = this.currentCaller();
    if (!caller) return { maxTimeMS: this.maxTimeMS };
    const left = Math.floor((caller.deadline ?? Infinity) - Date.now());
    // maxTimeMS 0 means "no limit" to MongoDB: a call already past its deadline gets 1 ms.
    return { maxTimeMS: Math.max(1, Math.min(this.maxTimeMS, left)), signal: caller.signal };
  }
}

/** Commands sent to MongoDB since start, by kind (bench and metrics read these). */
export interface StorageCounters {
  reads: number;
  writes: number;
  /** Reads of one key by its hash: what a Verify cache miss costs. */
  keyLookups: number;
}

export interface Storage {
  client: MongoClient;
  db: Db;
  collections: Collections;
  limits: QueryLimits;
  counters: StorageCounters;
  close(): Promise<void>;
}

/** Past a query's own maxTimeMS: time for the server's answer to arrive. */
const SOCKET_TIMEOUT_MARGIN_MS = 5_000;

const READS = new Set(['find', 'aggregate', 'count', 'distinct', 'getMore']);
const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify']);

function countCommands(client: MongoClient): StorageCounters {
  const counters = { reads: 0, writes: 0, keyLookups: 0 };
  client.on('commandStarted', (e) => {
    const filter = e.command.filter as Document | undefined;
    if (e.commandName === 'find' && filter?.hash !== undefined) counters.keyLookups++;
    if (READS.has(e.commandName)) counters.reads++;
    else if (WRITES.has(e.commandName)) counters.writes++;
  });
  return counters;
}

/** Every collection, for code that treats them alike (the test suite's index audit). */
export function allCollections(c: Collections): Collection[] {
  return Object.values(c) as Collection[];
}

export function collectionsOf(db: Db): Collections {
  return {
    keys: db.collection<KeyDocument>('api_keys'),
    organizations: db.collection<OrganizationDocument>('organizations'),
    slots: db.collection<KeySlotDocument>('key_slots'),
    slotCaps: db.collection<KeySlotCapDocument>('key_slot_caps'),
    usage: db.collection<KeyUsageDocument>('key_usage_daily'),
    lastUsed: db.collection<KeyLastUsedDocument>('key_last_used'),
    mutations: db.collection<KeyMutationDocument>('key_mutations'),
    createRequests: db.collection<CreateRequestDocument>('create_requests'),
    audit: db.collection<AuditEventDocument>('audit_events'),
    changes: db.collection<KeyChangeDocument>('key_changes'),
    rateCounters: db.collection<RateCounterDocument>('rate_counters'),
  };
}

/**
 * Idempotent: createIndex with the same spec is a no-op when the index exists. Index options and
 * the createIndexes command's options (none) are given apart, as the driver now wants.
 */
export async function ensureIndexes(c: Collections): Promise<void> {
  await c.keys.createIndex({ hash: 1 }, { unique: true, name: 'hash_unique' }, {});
  // ListKeys, newest first: by the statuses asked for, and with each filter by it too (docs/indexes.md).
  await c.keys.createIndex({ org_id: 1, status: 1, created_at: -1, _id: -1 }, { name: 'org_status' }, {});
  await c.keys.createIndex({ org_id: 1, workspace_id: 1, status: 1, created_at: -1, _id: -1 }, { name: 'org_workspace' }, {});
  await c.keys.createIndex({ org_id: 1, created_by: 1, status: 1, created_at: -1, _id: -1 }, { name: 'org_creator' }, {});
  await c.keys.createIndex({ org_id: 1, environment: 1, status: 1, created_at: -1, _id: -1 }, { name: 'org_environment' }, {});
  await c.keys.createIndex({ org_id: 1, scopes: 1, status: 1, created_at: -1, _id: -1 }, { name: 'org_scope' }, {});
  // The places taken, in order (the walk to a free one, the count under a lowered cap, orphans).
  await c.slots.createIndex({ org_id: 1, n: 1 }, { name: 'org_n' }, {});
  // A key's place, freed or handed to its successor.
  await c.slots.createIndex({ org_id: 1, key_id: 1 }, { name: 'org_key' }, {});
  await c.slotCaps.createIndex({ org_id: 1, cap: 1 }, { name: 'org_cap' }, {});
  await c.mutations.createIndex({ key_id: 1 }, { name: 'key' }, {});
  await c.audit.createIndex({ org_id: 1, time: -1, _id: -1 }, { name: 'org_time' }, {});
  await c.changes.createIndex({ at: 1 }, { name: 'at' }, {});
  // GetKeyUsage: one organization's or one key's days.
  await c.usage.createIndex({ org_id: 1, day: 1 }, { name: 'org_day' }, {});
  await c.usage.createIndex({ key_id: 1, day: 1 }, { name: 'key_day' }, {});
  // For the retention sweep's range queries (servers that use indexes; FerretDB scans anyway).
  await c.usage.createIndex({ day: 1 }, { name: 'day' }, {});
  await c.audit.createIndex({ time: 1 }, { name: 'time' }, {});
  await c.createRequests.createIndex({ created_at: 1 }, { name: 'created_at' }, {});
  await c.createRequests.createIndex({ expires_at: 1 }, { name: 'expires_at' }, {});
  // Ending a key forgets the secrets its create requests hold (CreateRequestRepository.forgetSecret).
  await c.createRequests.createIndex({ org_id: 1, key_id: 1 }, { name: 'org_key' }, {});
  // The rate-limit exchange reads the other instances' counters of the windows it syncs; the sweep removes ended ones.
  await c.rateCounters.createIndex({ key_id: 1, window_start: 1 }, { name: 'key_window' }, {});
  await c.rateCounters.createIndex({ window_end: 1 }, { name: 'window_end' }, {});
}

/** Indexes an earlier version declared that no query uses any more: they only cost writes. */
const RETIRED_INDEXES: ReadonlyArray<[keyof Collections, string]> = [
  ['slots', 'org'],
  ['mutations', 'at'],
  // ListKeys walks the status-aware org_status (and a filter's index) instead.
  ['keys', 'org_created'],
];

async function dropRetiredIndexes(c: Collections): Promise<void> {
  for (const [collection, name] of RETIRED_INDEXES) {
    await c[collection].dropIndex(name).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.codeName === 'IndexNotFound')) throw err;
    });
  }
}

export async function connectStorage(
  uri: string,
  dbName: string,
  timeouts: { connectMs: number; operationMs: number },
  currentCaller: () => QueryCaller | undefined,
  logger: Logger,
): Promise<Storage> {
  const client = new MongoClient(uri, {
    // Fail fast when the database is down: callers get UNAVAILABLE rather than a hang.
    serverSelectionTimeoutMS: timeouts.connectMs,
    // A backstop for writes, which carry no maxTimeMS: a reply that never comes fails the call.
    socketTimeoutMS: timeouts.operationMs + SOCKET_TIMEOUT_MARGIN_MS,
    appName: 'apikeys',
    monitorCommands: true,
  });
  const counters = countCommands(client);
  await client.connect();
  const db = client.db(dbName);
  const hello = await db.command({ hello: 1 });
  const build = await db
    .admin()
    .command({ buildInfo: 1 })
    .catch(() => ({ version: 'unknown' }));
  logger.info(
    { database: dbName, serverVersion: build.version, replicaSet: hello.setName ?? null },
    hello.setName
      ? 'connected to MongoDB replica set'
      : 'connected to a standalone MongoDB-wire server (no transactions or change streams used)',
  );
  const collections = collectionsOf(db);
  await ensureIndexes(collections);
  await dropRetiredIndexes(collections);
  return { client, db, collections, limits: new QueryLimits(timeouts.operationMs, currentCaller), counters, close: () => client.close() };
}
