// Fuzz test: hostile request *messages* on every RPC (metadata/headers are fuzzed by
// metadataFuzz.test.ts). Random unicode, empty and oversized strings, huge repeated fields,
// metadata keys with "$" or ".", NUL bytes, invalid ids, timestamps and durations. The server
// never crashes, answers only OK or a documented client error with an ErrorInfo reason, logs no
// unexpected error, and MongoDB never receives an operator or a field name taken from the input.
import { status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import type { CommandStartedEvent } from 'mongodb';
import { checkHealth } from '../../src/client/health';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { decodeStatusDetails } from '../../src/client/statusDetails';
import { FOREIGN_KEY_FORMATS } from '../support/foreignFormats';
import { startTestServer, type TestServer } from '../support/server';

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);

/** Codes a client may get for a bad or unlucky request; never INTERNAL, UNKNOWN or UNAVAILABLE. */
const CLIENT_CODES = new Set([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.FAILED_PRECONDITION,
  status.ABORTED,
  status.RESOURCE_EXHAUSTED,
  status.PERMISSION_DENIED,
]);

/** Operators and driver fields the service itself sends; anything else starting with "$" is not ours. */
const OWN_DOLLAR_KEYS = new Set([
  '$db',
  '$readPreference',
  '$clusterTime',
  '$set',
  '$setOnInsert',
  '$unset',
  '$inc',
  '$max',
  '$min',
  '$gte',
  '$gt',
  '$lte',
  '$lt',
  '$in',
  '$nin',
  '$ne',
  '$eq',
  '$and',
  '$or',
  '$exists',
  '$match',
  '$group',
  '$sort',
  '$limit',
  '$sum',
  '$count',
  '$project',
  '$skip',
]);

// ---------- arbitraries ----------

const nasty = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '$where',
  '$gt',
  '{"$ne":null}',
  'a.b',
  '.',
  '$',
  '__proto__',
  'constructor',
  '\u202e',
  '\ud83d\ude00',
  '\uFFFF',
  'key_',
  'KEY_01J0000000000000000000000',
  'org_',
  '../../etc/passwd',
);
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: nasty },
  { weight: 1, arbitrary: fc.integer({ min: 129, max: 200_000 }).map((n) => 'x'.repeat(n)) },
);
const metadataMap = fc.dictionary(fc.oneof(text, nasty, fc.constantFrom('plan', 'team')), text, { maxKeys: 40 });
const stringList: fc.Arbitrary<string[]> = fc.oneof(
  fc.array(text, { maxLength: 8 }),
  fc.constantFrom<string[]>(['read'], ['read', 'write'], ['admin'], []),
  fc.integer({ min: 100, max: 5000 }).map((n) => Array.from({ length: n }, (_, i) => `s${i}`)),
);
const date = fc.oneof(
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
  fc.constantFrom(new Date(0), new Date(Date.now() - 1000), new Date(Date.now() + 3_600_000)),
);
const int32 = fc.oneof(fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }), fc.constantFrom(0, 1, 100, 101, -1));
const uint32 = fc.oneof(fc.integer({ min: 0, max: 4_294_967_295 }), fc.constantFrom(0, 1, 60));
/** What a caller presents as a key's secret: anything, a well-formed unknown one, or one with a bad checksum. */
const secretText = fc.oneof(text, fc.constant(generateSecret('sk', 'live')), fc.constant(`sk_live_${'A'.repeat(38)}`));

/** A new key's settings, as CreateKey and ImportKeys take them. */
const KEY_SETTINGS = {
  name: text,
  scopes: stringList,
  environment: fc.oneof(text, fc.constantFrom('live', 'test')),
  expireTime: fc.option(date, { nil: undefined }),
  metadata: metadataMap,
  workspaceId: text,
  rateLimit: fc.option(fc.record({ limit: uint32, windowSeconds: uint32 }), { nil: undefined }),
};

describe('request fuzz over every RPC', () => {
  let s: TestServer;
  let admin: Metadata;
  let service: Metadata;
  let staff: Metadata;
  let realIds: string[];
  const sent: CommandStartedEvent[] = [];
  /** Every string the fuzzer produced that contains "$" or ".": none may reach MongoDB as a field name. */
  const dangerous = new Set<string>();

  beforeAll(async () => {
    s = await startTestServer('request_fuzz', { ORG_KEY_LIMIT: '1000', FOREIGN_KEY_FORMATS });
    admin = (await s.admin()).metadata;
    service = bearer(s.verifyToken);
    staff = bearer(await s.userToken({ email: 'ops@staff.example', emailVerified: true }));
    const made = await Promise.all(
      Array.from({ length: 12 }, (_, i) => s.clients.keys.createKey({ name: `fuzz ${i}`, scopes: ['read', 'write'] }, admin)),
    );
    realIds = made.map((m) => m.key!.id);
    s.app.storage.client.on('commandStarted', (e) => sent.push(e));
  }, 60_000);
  afterAll(() => s.stop());

  // Built lazily: realIds exists only once beforeAll has run.
  const id = () => fc.oneof(text, fc.constantFrom(...realIds), fc.constant(newId('key')), fc.constant(newId('org')));

  function note(value: unknown): void {
    if (typeof value === 'string') {
      if (value.includes('$') || value.includes('.')) dangerous.add(value);
    } else if (Array.isArray(value)) value.forEach(note);
    else if (value && typeof value === 'object' && !(value instanceof Date)) {
      for (const [k, v] of Object.entries(value)) {
        note(k);
        note(v);
      }
    }
  }

  /** Notes the request's dangerous strings, and makes fast-check print the request in a counterexample. */
  function labelled(req: unknown, run: () => Promise<unknown>): () => Promise<unknown> {
    note(req);
    const short = JSON.stringify(req, (_k, v: unknown) =>
      typeof v === 'string' && v.length > 80
        ? `${v.slice(0, 20)}…(${v.length} chars)`
        : Array.isArray(v) && v.length > 10
          ? `[${v.length} items]`
          : v,
    );
    return Object.assign(run, { [fc.toStringMethod]: () => short });
  }

  /** Sends one request; returns null when the client library refused to encode it (never sent). */
  async function answer(call: () => Promise<unknown>): Promise<{ code: status; reason?: string } | null> {
    let p: Promise<unknown>;
    try {
      p = call();
    } catch {
      return null;
    }
    try {
      await p;
      return { code: status.OK };
    } catch (err) {
      const e = err as ServiceError;
      if (typeof e.code !== 'number') return null; // encoding failed inside the client
      let reason: string | undefined;
      try {
        reason = decodeStatusDetails(e).errorInfo?.reason;
      } catch {
        reason = undefined;
      }
      return {
        code: e.code,
        reason: reason ?? (e.details.includes('message larger than max') ? 'TRANSPORT_MESSAGE_TOO_LARGE' : undefined),
      };
    }
  }

  const RPCS: Record<string, () => fc.Arbitrary<() => Promise<unknown>>> = {
    createKey: () =>
      fc
        .record({ ...KEY_SETTINGS, allowSelfRevoke: fc.boolean(), recoverable: fc.boolean(), requestId: text })
        .map((req) => labelled(req, () => s.clients.keys.createKey(req, admin, opts()))),
    getKey: () => id().map((v) => labelled(v, () => s.clients.keys.getKey({ id: v }, admin, opts()))),
    listKeys: () =>
      fc
        .record({
          pageSize: int32,
          pageToken: text,
          includeRevoked: fc.boolean(),
          includeArchived: fc.boolean(),
          unusedSince: fc.option(date, { nil: undefined }),
        })
        .map((req) => labelled(req, () => s.clients.keys.listKeys(req, admin, opts()))),
    updateKey: () =>
      fc
        .record({
          key: fc.record({
            id: id(),
            name: text,
            scopes: stringList,
            metadata: metadataMap,
            expireTime: fc.option(date, { nil: undefined }),
            etag: text,
          }),
          updateMask: fc.array(
            fc.oneof(text, fc.constantFrom('name', 'scopes', 'metadata', 'expire_time', 'rate_limit', 'etag', 'org_id')),
            { maxLength: 6 },
          ),
        })
        .map((req) => labelled(req, () => s.clients.keys.updateKey(req, admin, opts()))),
    revokeKey: () => fc.record({ id: id(), comment: text }).map((req) => labelled(req, () => s.clients.keys.revokeKey(req, admin, opts()))),
    archiveKey: () => id().map((v) => labelled(v, () => s.clients.keys.archiveKey({ id: v }, admin, opts()))),
    reactivateKey: () => id().map((v) => labelled(v, () => s.clients.keys.reactivateKey({ id: v }, admin, opts()))),
    deleteKey: () => id().map((v) => labelled(v, () => s.clients.keys.deleteKey({ id: v }, admin, opts()))),
    rotateKey: () =>
      fc
        .record({
          id: id(),
          overlap: fc.option(
            fc.record({ seconds: fc.integer({ min: -1e12, max: 1e12 }), nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }) }),
            { nil: undefined },
          ),
        })
        .map((req) => labelled(req, () => s.clients.keys.rotateKey(req, admin, opts()))),
    getKeySecret: () => id().map((v) => labelled(v, () => s.clients.keys.getKeySecret({ id: v }, admin, opts()))),
    listAuditEvents: () =>
      fc
        .record({
          pageSize: int32,
          pageToken: text,
          action: text,
          keyId: id(),
          startTime: fc.option(date, { nil: undefined }),
          endTime: fc.option(date, { nil: undefined }),
        })
        .map((req) => labelled(req, () => s.clients.keys.listAuditEvents(req, admin, opts()))),
    importKeys: () =>
      fc
        .array(
          fc.record({
            secretOrHash: fc.option(
              fc.oneof(
                fc.oneof(text, fc.stringMatching(/^fnp_[0-9a-f]{32}$/)).map((value) => ({ $case: 'secret' as const, value })),
                fc.oneof(text, fc.stringMatching(/^[0-9a-f]{64}$/)).map((value) => ({ $case: 'secretSha256' as const, value })),
              ),
              { nil: undefined },
            ),
            format: fc.oneof(text, fc.constantFrom('fnp', 'ffy', 'stripe')),
            ...KEY_SETTINGS,
            createTime: fc.option(date, { nil: undefined }),
            lastUsedTime: fc.option(date, { nil: undefined }),
            start: fc.oneof(text, fc.constant('fnp_')),
          }),
          { maxLength: 3 },
        )
        .map((keys) => labelled(keys, () => s.clients.keys.importKeys({ keys }, admin, opts()))),
    verifyKey: () =>
      fc
        .record({
          key: secretText,
          requiredScopes: stringList,
        })
        .map((req) => labelled(req, () => s.clients.verify.verifyKey(req, service, opts()))),
    setOrganizationKeyLimit: () =>
      uint32.map((keyLimit) => labelled(keyLimit, () => s.clients.keys.setOrganizationKeyLimit({ keyLimit }, staff, opts()))),
    lookupKey: () => secretText.map((secret) => labelled(secret, () => s.clients.keys.lookupKey({ secret }, service, opts()))),
    reportLeakedKeys: () =>
      fc
        .record({ reporter: text, secrets: fc.array(fc.record({ secret: secretText, location: text }), { maxLength: 120 }) })
        .map((req) => labelled(req, () => s.clients.keys.reportLeakedKeys(req, service, opts()))),
  };

  /** A hung call must surface (as DEADLINE_EXCEEDED, which fails the property), not stall the run. */
  const opts = () => ({ deadline: Date.now() + 10_000 });
  const tally: Record<string, Record<string, number>> = {};

  it.each(Object.keys(RPCS))(
    '%s: only OK or a documented client error, with a reason',
    async (rpc) => {
      await fc.assert(
        fc.asyncProperty(RPCS[rpc](), async (call) => {
          const a = await answer(call);
          if (!a) return; // not encodable by the client: nothing was sent
          const label = a.code === status.OK ? 'OK' : `${status[a.code]}/${a.reason ?? '-'}`;
          (tally[rpc] ??= {})[label] = ((tally[rpc] ??= {})[label] ?? 0) + 1;
          if (a.code === status.OK) return;
          expect(CLIENT_CODES).toContain(a.code);
          expect(a.reason).toBeDefined();
        }),
        // No shrinking: each step is a real call, and the first counterexample is what we need.
        { numRuns: RUNS, endOnFailure: true },
      );
    },
    120_000,
  );

  it('left the server healthy, logged no unexpected error, and sent MongoDB no field name from the input', async () => {
    expect(await checkHealth(s.address)).toBe('SERVING');
    expect((await s.clients.keys.listKeys({}, admin)).keys.length).toBeGreaterThanOrEqual(0);
    const errors = s.logs.filter((l) => /"level":50/.test(l));
    expect(errors).toEqual([]);

    const dollarKeys = new Set<string>();
    const inputKeysSeen: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (
        v &&
        typeof v === 'object' &&
        !(v instanceof Date) &&
        !Buffer.isBuffer(v) &&
        (v as { _bsontype?: string })._bsontype === undefined
      ) {
        for (const [k, child] of Object.entries(v)) {
          if (k.startsWith('$')) dollarKeys.add(k);
          if (dangerous.has(k)) inputKeysSeen.push(k);
          walk(child);
        }
      }
    };
    for (const e of sent) walk(e.command);
    expect(sent.length).toBeGreaterThan(RUNS);
    expect([...dollarKeys].filter((k) => !OWN_DOLLAR_KEYS.has(k))).toEqual([]);
    expect(inputKeysSeen).toEqual([]);
    process.stdout.write(
      `request fuzz (${RUNS} runs per RPC): ${JSON.stringify(tally)}\noperators sent: ${[...dollarKeys].sort().join(' ')}\n`,
    );
  });
});
