import { credentials, makeGenericClientConstructor, status, type ClientReadableStream } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { checkHealth, type HealthAnswer } from '../../src/client/health';
import { sampleValue, scrape } from '../support/prometheus';
import { startTestServer, type TestServer } from '../support/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ping every 200 ms with a 500 ms server-selection timeout: a state change shows within ~1 s. */
const HEALTH_INTERVAL_MS = 200;
const MONGODB_TIMEOUT_MS = 500;
/** The bounds this test holds the service to. */
const DOWN_WITHIN_MS = 3_000;
const UP_WITHIN_MS = 10_000;
const SHUTDOWN_GRACE_MS = 1_000;

const SERVICES = ['', 'apikeys.v1.KeyService', 'apikeys.v1.VerifyService'];

/** The container probe (src/healthcheck.ts) as Docker runs it: a process, GRPC_ADDR, an exit code. */
function probe(port: number, service?: string): Promise<{ code: number; stdout: string }> {
  const args = ['--import', 'tsx', 'src/healthcheck.ts', ...(service === undefined ? [] : [service])];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: join(__dirname, '..', '..'), env: { PATH: process.env.PATH!, GRPC_ADDR: `0.0.0.0:${port}` }, timeout: 30_000 },
      (err, stdout) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
    );
  });
}

/** grpc.health.v1 follows MongoDB: NOT_SERVING while it is unreachable, SERVING once it is back. */
describe('health while the database goes away and comes back', () => {
  let server: TestServer;

  beforeAll(async () => {
    // This test kills its own database server, so it cannot share the suite's.
    server = await startTestServer(
      'health',
      {
        HEALTH_CHECK_INTERVAL_MS: String(HEALTH_INTERVAL_MS),
        MONGODB_TIMEOUT_MS: String(MONGODB_TIMEOUT_MS),
        SHUTDOWN_GRACE_MS: String(SHUTDOWN_GRACE_MS),
      },
      { ownDatabase: true },
    );
  }, 60_000);
  afterAll(() => server?.stop());

  const all = () => Promise.all(SERVICES.map((s) => checkHealth(server.address, s)));
  async function waitFor(want: HealthAnswer, withinMs: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < withinMs) {
      if ((await all()).every((a) => a === want)) return Date.now() - started;
      await sleep(50);
    }
    throw new Error(`health did not become ${want} within ${withinMs} ms (now ${JSON.stringify(await all())})`);
  }

  it('the container probe exits 0 for SERVING and 1 for any other answer', async () => {
    const port = server.app.port;
    expect(await probe(port)).toEqual({ code: 0, stdout: `127.0.0.1:${port} (server): SERVING\n` });
    expect(await probe(port, 'apikeys.v1.VerifyService')).toEqual({
      code: 0,
      stdout: `127.0.0.1:${port} apikeys.v1.VerifyService: SERVING\n`,
    });
    const unknown = await probe(port, 'no.such.Service');
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port} no\\.such\\.Service: error: 5 NOT_FOUND`));
  });

  it('is NOT_SERVING within the bound after the database dies, and SERVING again after it restarts', async () => {
    expect(await all()).toEqual(['SERVING', 'SERVING', 'SERVING']);
    const { app } = server;
    const db = server.database!;
    expect(sampleValue(await scrape(app.metricsPort!), 'apikeys_storage_up')).toBe(1);

    await db.kill();
    const downAfter = await waitFor('NOT_SERVING', DOWN_WITHIN_MS);
    const down = await scrape(app.metricsPort!);
    expect(sampleValue(down, 'apikeys_storage_up')).toBe(0);
    expect(sampleValue(down, 'apikeys_storage_ping_failures_total')).toBeGreaterThanOrEqual(1);
    // Stays down while the database is down (no flapping back on a stale connection).
    await sleep(1_000);
    expect(await all()).toEqual(['NOT_SERVING', 'NOT_SERVING', 'NOT_SERVING']);
    expect(await probe(app.port)).toEqual({ code: 1, stdout: `127.0.0.1:${app.port} (server): NOT_SERVING\n` });

    await db.restart();
    const upAfter = await waitFor('SERVING', UP_WITHIN_MS);
    expect(sampleValue(await scrape(app.metricsPort!), 'apikeys_storage_up')).toBe(1);
    process.stdout.write(`health: NOT_SERVING ${downAfter} ms after the kill, SERVING ${upAfter} ms after the restart\n`);
  }, 60_000);

  it('turns NOT_SERVING when shutdown starts, and a watcher cannot hold shutdown past SHUTDOWN_GRACE_MS', async () => {
    // A Watch stream is a call in flight: it sees the NOT_SERVING update, then keeps the drain
    // waiting until the grace deadline cancels it.
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const client = new Health(server.address, credentials.createInsecure());
    const seen: unknown[] = [];
    const watch = (client as unknown as { Watch: (req: { service: string }) => ClientReadableStream<{ status: unknown }> }).Watch.call(
      client,
      {
        service: '',
      },
    );
    const ended = new Promise<{ code?: number }>((resolve) => {
      watch.on('data', (m: { status: unknown }) => seen.push(m.status));
      watch.on('error', resolve);
      watch.on('end', () => resolve({}));
    });
    while (seen.length === 0) await sleep(20);
    expect(seen).toEqual(['SERVING']);

    const started = Date.now();
    await server.app.stop();
    const took = Date.now() - started;
    const end = await ended;
    client.close();
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(end.code).toBe(status.CANCELLED); // forceShutdown after the grace period
    expect(took).toBeGreaterThanOrEqual(SHUTDOWN_GRACE_MS - 50);
    expect(took).toBeLessThan(SHUTDOWN_GRACE_MS + 3_000);
    await expect(checkHealth(server.address, '', 500)).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });
});
