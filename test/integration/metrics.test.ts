import { Metadata, status } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import { generateSecret } from '../../src/domain/keyFormat';
import { VerifyCode } from '../../src/gen/apikeys/v1/verify_service';
import { sampleValue, scrape, type Sample } from '../support/prometheus';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const handled = (samples: Sample[], service: string, method: string, code: string) =>
  sampleValue(samples, 'grpc_server_handled_total', { grpc_service: `apikeys.v1.${service}`, grpc_method: method, grpc_code: code });

/** After a known sequence of calls, /metrics shows exactly the matching counters. */
describe('/metrics', () => {
  let s: TestServer;
  let other: TestServer;
  beforeAll(async () => {
    // No invalidation polling (and a bound to match), so cache counts come from the calls below alone; fast flushes.
    s = await startTestServer('metrics', {
      INVALIDATION_POLL_MS: '3600000',
      VERIFY_REVOCATION_BOUND_MS: '7200000',
      USAGE_FLUSH_INTERVAL_MS: '200',
    });
    other = await startTestServer('metrics_other');
  });
  afterAll(async () => {
    await s?.stop();
    await other?.stop();
  });

  it('counts RPCs by method and code, Verify results, cache traffic, MongoDB commands and usage flushes', async () => {
    expect(s.app.metricsPort).toEqual(expect.any(Number));
    const admin = await s.admin();
    const service = bearer(s.verifyToken);
    const verify = (key: string, md: Metadata = service) => s.clients.verify.verifyKey({ key }, md);

    const a = await s.clients.keys.createKey({ name: 'a', scopes: ['read'] }, admin.metadata);
    const b = await s.clients.keys.createKey({ name: 'b', scopes: ['read'] }, admin.metadata);
    for (let i = 0; i < 3; i++) expect((await verify(a.secret)).code).toBe(VerifyCode.VERIFY_CODE_VALID); // miss, hit, hit
    expect((await verify('garbage')).code).toBe(VerifyCode.VERIFY_CODE_MALFORMED); // never reaches the cache
    const unknown = generateSecret('sk', 'live');
    expect((await verify(unknown)).code).toBe(VerifyCode.VERIFY_CODE_NOT_FOUND); // miss (negative entry stored)
    expect((await verify(unknown)).code).toBe(VerifyCode.VERIFY_CODE_NOT_FOUND); // hit (negative)
    await s.clients.keys.revokeKey({ id: a.key!.id }, admin.metadata); // evicts a's entry
    expect((await verify(a.secret)).code).toBe(VerifyCode.VERIFY_CODE_REVOKED); // miss
    expect((await verify(b.secret)).code).toBe(VerifyCode.VERIFY_CODE_VALID); // miss
    await expect(s.clients.keys.getKey({ id: newId('key') }, admin.metadata)).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(s.clients.keys.listKeys({})).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    // Metadata over GRPC_MAX_METADATA_BYTES (16 KiB by default) is refused before authentication.
    const big = bearer(s.verifyToken, { 'x-padding': 'p'.repeat(20_000) });
    await expect(verify(b.secret, big)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });

    // Usage of a and b is flushed in the background every 200 ms.
    let m = await scrape(s.app.metricsPort!);
    for (let i = 0; i < 50 && !(sampleValue(m, 'apikeys_usage_flush_keys_total')! >= 2); i++) {
      await sleep(100);
      m = await scrape(s.app.metricsPort!);
    }

    expect(handled(m, 'KeyService', 'CreateKey', 'OK')).toBe(2);
    expect(handled(m, 'KeyService', 'RevokeKey', 'OK')).toBe(1);
    expect(handled(m, 'KeyService', 'GetKey', 'NOT_FOUND')).toBe(1);
    expect(handled(m, 'KeyService', 'ListKeys', 'UNAUTHENTICATED')).toBe(1);
    expect(handled(m, 'VerifyService', 'VerifyKey', 'OK')).toBe(8);
    expect(handled(m, 'VerifyService', 'VerifyKey', 'INVALID_ARGUMENT')).toBe(1);
    expect(sampleValue(m, 'grpc_server_started_total', { grpc_service: 'apikeys.v1.VerifyService', grpc_method: 'VerifyKey' })).toBe(9);
    expect(sampleValue(m, 'grpc_server_handling_seconds_count', { grpc_service: 'apikeys.v1.KeyService', grpc_method: 'CreateKey' })).toBe(
      2,
    );
    expect(sampleValue(m, 'grpc_server_in_flight')).toBe(0);
    expect(sampleValue(m, 'apikeys_grpc_metadata_rejected_total')).toBe(1);

    expect(sampleValue(m, 'apikeys_verify_results_total', { code: 'VALID' })).toBe(4);
    expect(sampleValue(m, 'apikeys_verify_results_total', { code: 'MALFORMED' })).toBe(1);
    expect(sampleValue(m, 'apikeys_verify_results_total', { code: 'NOT_FOUND' })).toBe(2);
    expect(sampleValue(m, 'apikeys_verify_results_total', { code: 'REVOKED' })).toBe(1);

    expect(sampleValue(m, 'apikeys_verify_cache_lookups_total', { result: 'hit' })).toBe(3);
    expect(sampleValue(m, 'apikeys_verify_cache_lookups_total', { result: 'miss' })).toBe(4);
    expect(sampleValue(m, 'apikeys_verify_cache_lookups_total', { result: 'unconfirmed' })).toBe(0);
    expect(sampleValue(m, 'apikeys_invalidation_lag_seconds')).toBeGreaterThan(0); // no poll has run
    expect(sampleValue(m, 'apikeys_verify_cache_evictions_total', { reason: 'invalidated' })).toBe(1);
    expect(sampleValue(m, 'apikeys_verify_cache_entries')).toBe(3); // a (revoked), b, unknown (negative)

    expect(sampleValue(m, 'apikeys_mongodb_command_duration_seconds_count', { command: 'insert' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(m, 'apikeys_mongodb_command_duration_seconds_count', { command: 'find' })).toBeGreaterThanOrEqual(3);
    expect(sampleValue(m, 'apikeys_storage_up')).toBe(1);

    expect(sampleValue(m, 'apikeys_usage_flush_batches_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'apikeys_usage_flush_keys_total')).toBeGreaterThanOrEqual(2);

    expect(sampleValue(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sampleValue(m, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('keeps one registry per app instance: another server in this process counted none of those calls', async () => {
    const m = await scrape(other.app.metricsPort!);
    expect(other.app.metricsPort).not.toBe(s.app.metricsPort);
    expect(handled(m, 'KeyService', 'CreateKey', 'OK')).toBeUndefined();
    expect(sampleValue(m, 'apikeys_verify_results_total', { code: 'VALID' })).toBeUndefined();
    expect(sampleValue(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('answers 404 off /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${s.app.metricsPort!}/`);
    expect(res.status).toBe(404);
    await res.text();
  });
});
