import { status as grpcStatus } from '@grpc/grpc-js';
import type { MongoClient } from 'mongodb';
import { createServer, type Server as HttpServer } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { KeyCache } from '../domain/keyCache';
import type { RateLimiter } from '../domain/rateLimiter';
import type { VerifyCodeName } from '../domain/verification';
import type { Logger } from '../logging/logger';

type MethodLabels = { grpc_service: string; grpc_method: string };

/** grpc_server_handling_seconds' upper bounds. */
const HANDLING_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One method's labels and calls so far, as plain numbers: Prometheus reads them at scrape time. */
export class MethodCalls {
  started = 0;
  /** Finished calls by gRPC status code. */
  readonly handled = new Map<number, number>();
  /** Finished calls by duration: how many took at most HANDLING_BUCKETS[i] and more than the bound before; the last, more than all. */
  readonly durations: number[] = new Array<number>(HANDLING_BUCKETS.length + 1).fill(0);
  /** Their durations' sum, in seconds. */
  seconds = 0;

  constructor(readonly labels: MethodLabels) {}
}

/**
 * grpc_server_handling_seconds from MethodCalls' counts, as of the scrape. prom-client's Histogram
 * takes no counts handed over, and hashes its label object on every observe (~330 B a call); the
 * registry formats any metric from its name, help, type and get()'s values, as it does its own
 * histograms' (buckets cumulative, then +Inf, sum and count). Methods with no finished call have
 * no samples, as with prom-client's.
 */
function handlingSeconds(methods: Map<string, MethodCalls>) {
  const name = 'grpc_server_handling_seconds';
  const help = 'Time from receiving an RPC to sending its status, by method.';
  const metric = { name, help, type: 'histogram' as const, aggregator: 'sum' as const };
  return {
    ...metric,
    get: () => {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const m of methods.values()) {
        const count = m.durations.reduce((n, d) => n + d, 0);
        if (count === 0) continue;
        let atMost = 0;
        HANDLING_BUCKETS.forEach((le, i) => {
          atMost += m.durations[i];
          values.push({ metricName: `${name}_bucket`, labels: { le, ...m.labels }, value: atMost });
        });
        values.push(
          { metricName: `${name}_bucket`, labels: { le: '+Inf', ...m.labels }, value: count },
          { metricName: `${name}_sum`, labels: m.labels, value: m.seconds },
          { metricName: `${name}_count`, labels: m.labels, value: count },
        );
      }
      return Promise.resolve({ ...metric, values });
    },
    reset: () => {
      for (const m of methods.values()) {
        m.durations.fill(0);
        m.seconds = 0;
      }
    },
  };
}

/**
 * Prometheus metrics of one app instance. Each instance has its own Registry (never the
 * global one), so several servers in one process — tests, the benchmark — do not clash.
 *
 * Names follow the conventions dashboards already know: grpc_server_* as go-grpc-prometheus
 * and grpc-java name them (grpc_code is the canonical UPPER_SNAKE name, e.g. NOT_FOUND);
 * everything of this service is prefixed apikeys_.
 */
export class Metrics {
  readonly registry = new Registry();

  private inFlight = 0;
  private readonly verifyResults = new Map<VerifyCodeName, number>();
  private readonly mongoDuration: Histogram<'command'>;
  private readonly mongoErrors: Counter<'command'>;
  private readonly flushBatches: Counter<'outcome'>;
  private readonly flushKeys: Counter;
  private readonly flushDuration: Histogram;
  private readonly metadataRejected: Counter;
  private readonly forwardAuthDropped: Counter;
  private readonly retentionDeletedDocs: Counter<'collection'>;
  private readonly retentionSweeps: Counter<'outcome'>;
  private readonly followUpFailures: Counter<'what'>;

  /** Per "/pkg.Service/Method": its labels, split once, and its counts. */
  private readonly methods = new Map<string, MethodCalls>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    // Calls are counted in plain numbers (a call costs a few additions, not a label lookup per
    // series) and handed to prom-client when scraped.
    const methods = this.methods;
    new Counter({
      name: 'grpc_server_started_total',
      help: 'RPCs started on the server.',
      labelNames: ['grpc_service', 'grpc_method'],
      registers,
      collect() {
        this.reset();
        for (const m of methods.values()) this.inc(m.labels, m.started);
      },
    });
    new Counter({
      name: 'grpc_server_handled_total',
      help: 'RPCs completed on the server, by method and gRPC status code.',
      labelNames: ['grpc_service', 'grpc_method', 'grpc_code'],
      registers,
      collect() {
        this.reset();
        for (const m of methods.values()) {
          for (const [code, n] of m.handled) this.inc({ ...m.labels, grpc_code: grpcStatus[code] ?? String(code) }, n);
        }
      },
    });
    this.registry.registerMetric(handlingSeconds(methods) as unknown as Metric);
    const inFlight = () => this.inFlight;
    new Gauge({
      name: 'grpc_server_in_flight',
      help: 'RPCs being handled right now.',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    const verifyResults = this.verifyResults;
    new Counter({
      name: 'apikeys_verify_results_total',
      help: 'VerifyKey answers by result code (VALID, NOT_FOUND, REVOKED, …); RPC errors are in grpc_server_handled_total.',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset();
        for (const [code, n] of verifyResults) this.inc({ code }, n);
      },
    });
    this.mongoDuration = new Histogram({
      name: 'apikeys_mongodb_command_duration_seconds',
      help: 'MongoDB command round trips (driver command monitoring), by command name.',
      labelNames: ['command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.mongoErrors = new Counter({
      name: 'apikeys_mongodb_command_errors_total',
      help: 'MongoDB commands that failed (network errors, server errors), by command name.',
      labelNames: ['command'],
      registers,
    });
    this.flushBatches = new Counter({
      name: 'apikeys_usage_flush_batches_total',
      help: 'Non-empty last_used_at/usage batches written to MongoDB, by outcome (ok, error: kept for the next flush).',
      labelNames: ['outcome'],
      registers,
    });
    this.flushKeys = new Counter({
      name: 'apikeys_usage_flush_keys_total',
      help: 'Keys whose usage was written by successful flushes.',
      registers,
    });
    this.flushDuration = new Histogram({
      name: 'apikeys_usage_flush_duration_seconds',
      help: 'Time to write one non-empty usage batch.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.metadataRejected = new Counter({
      name: 'apikeys_grpc_metadata_rejected_total',
      help: 'Calls refused because their metadata exceeded GRPC_MAX_METADATA_BYTES.',
      registers,
    });
    this.forwardAuthDropped = new Counter({
      name: 'apikeys_forward_auth_connections_dropped_total',
      help: 'Connections to the forward-auth endpoint closed on arrival because HTTP_AUTH_MAX_CONNECTIONS were open.',
      registers,
    });
    this.followUpFailures = new Counter({
      name: 'apikeys_follow_up_failures_total',
      help: 'Work after a change that already happened (audit event, slot release, sealed-copy removal, change log) that failed; the change itself stands.',
      labelNames: ['what'],
      registers,
    });
    this.retentionDeletedDocs = new Counter({
      name: 'apikeys_retention_deleted_total',
      help: 'Documents removed by the retention sweep, by collection.',
      labelNames: ['collection'],
      registers,
    });
    this.retentionSweeps = new Counter({
      name: 'apikeys_retention_sweeps_total',
      help: 'Retention sweeps finished, by outcome (ok, error: some collection could not be swept; retried next run).',
      labelNames: ['outcome'],
      registers,
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The method of "/pkg.Service/Method", to count its calls in. */
  method(path: string): MethodCalls {
    let m = this.methods.get(path);
    if (!m) {
      // grpc-js runs interceptors only for registered methods, so this map stays small.
      const [, service = 'unknown', method = 'unknown'] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
      m = new MethodCalls({ grpc_service: service, grpc_method: method });
      this.methods.set(path, m);
    }
    return m;
  }

  /** A call of `m` arrived. */
  rpcStarted(m: MethodCalls): void {
    m.started++;
    this.inFlight++;
  }

  /** A call of `m` ended with `code` after `seconds`; once per call. */
  rpcEnded(m: MethodCalls, code: number, seconds: number): void {
    this.inFlight--;
    m.handled.set(code, (m.handled.get(code) ?? 0) + 1);
    let i = 0;
    while (i < HANDLING_BUCKETS.length && seconds > HANDLING_BUCKETS[i]) i++;
    m.durations[i]++;
    m.seconds += seconds;
  }

  verifyResult(code: VerifyCodeName): void {
    this.verifyResults.set(code, (this.verifyResults.get(code) ?? 0) + 1);
  }

  followUpFailed(what: string): void {
    this.followUpFailures.inc({ what });
  }

  forwardAuthConnectionDropped(): void {
    this.forwardAuthDropped.inc();
  }

  metadataTooLarge(): void {
    this.metadataRejected.inc();
  }

  /** Read from the storage health monitor at scrape time: it is the one record of reachability. */
  observeStorage(storage: { readonly isReachable: boolean; readonly failedPings: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'apikeys_storage_up',
      help: '1 while the periodic MongoDB ping succeeds (health SERVING), 0 otherwise.',
      registers,
      collect() {
        this.set(storage.isReachable ? 1 : 0);
      },
    });
    new Counter({
      name: 'apikeys_storage_ping_failures_total',
      help: 'Failed periodic MongoDB pings.',
      registers,
      collect() {
        this.reset();
        this.inc(storage.failedPings);
      },
    });
  }

  /** WatchKeyChanges, read from the feed at scrape time: subscribers now, messages sent by type, RESETs by reason. */
  observeFeed(feed: {
    readonly subscribers: number;
    readonly sentByType: Readonly<Record<string, number>>;
    readonly resetsByReason: Readonly<Record<string, number>>;
  }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'apikeys_watch_subscribers',
      help: 'Open WatchKeyChanges streams on this instance.',
      registers,
      collect() {
        this.set(feed.subscribers);
      },
    });
    const totals = (name: string, help: string, label: string, read: () => Readonly<Record<string, number>>) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
        },
      });
    totals(
      'apikeys_watch_messages_sent_total',
      'WatchKeyChanges messages sent, by type (change, heartbeat, reset).',
      'type',
      () => feed.sentByType,
    );
    totals('apikeys_watch_resets_total', 'WatchKeyChanges RESETs sent, by reason.', 'reason', () => feed.resetsByReason);
  }

  /** Wraps the usage-flush task: counts non-empty batches, their keys, outcome and duration. */
  observeUsageFlush(pending: () => number, task: () => Promise<void>): () => Promise<void> {
    return async () => {
      const keys = pending();
      if (keys === 0) return task();
      const end = this.flushDuration.startTimer();
      try {
        await task();
        this.flushBatches.inc({ outcome: 'ok' });
        this.flushKeys.inc(keys);
      } catch (err) {
        this.flushBatches.inc({ outcome: 'error' });
        throw err;
      } finally {
        end();
      }
    };
  }

  retentionDeleted(collection: string, count: number): void {
    this.retentionDeletedDocs.inc({ collection }, count);
  }

  /** Wraps the retention sweep: counts runs by outcome. */
  observeRetentionSweep(task: () => Promise<void>): () => Promise<void> {
    return async () => {
      try {
        await task();
        this.retentionSweeps.inc({ outcome: 'ok' });
      } catch (err) {
        this.retentionSweeps.inc({ outcome: 'error' });
        throw err;
      }
    };
  }

  /** MongoDB command latency and errors, from the driver's command monitoring events. */
  observeMongo(client: MongoClient): void {
    client.on('commandSucceeded', (e) => this.mongoDuration.observe({ command: e.commandName }, e.duration / 1000));
    client.on('commandFailed', (e) => {
      this.mongoDuration.observe({ command: e.commandName }, e.duration / 1000);
      this.mongoErrors.inc({ command: e.commandName });
    });
  }

  /** Above VERIFY_REVOCATION_BOUND_MS, cached keys are not trusted (re-read, or UNAVAILABLE). */
  /** Read from the Verifier at scrape time. */
  observeVerifier(verifier: { lagMs(): number; readonly shed: number }): void {
    new Gauge({
      name: 'apikeys_invalidation_lag_seconds',
      help: 'Time since the start of the last successful key change-log poll.',
      registers: [this.registry],
      collect() {
        this.set(verifier.lagMs() / 1000);
      },
    });
    new Counter({
      name: 'apikeys_verify_reads_shed_total',
      help: 'Verify cache misses answered UNAVAILABLE at once because VERIFY_MAX_CONCURRENT_READS key reads were already in flight.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(verifier.shed);
      },
    });
  }

  /** Read from the RateLimiter at scrape time. */
  observeRateLimiter(limiter: Pick<RateLimiter, 'stats' | 'localOnly'>): void {
    const registers = [this.registry];
    new Counter({
      name: 'apikeys_rate_limit_exchanges_total',
      help: 'Rate-limit counter exchanges (write this instance’s counts, read the others’): path background (RATE_LIMIT_SYNC_MS) or verify (a VerifyKey call waited for one), outcome ok or error.',
      labelNames: ['path', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [path, outcomes] of Object.entries(limiter.stats.exchanges)) {
          for (const [outcome, n] of Object.entries(outcomes)) this.inc({ path, outcome }, n);
        }
      },
    });
    new Counter({
      name: 'apikeys_rate_limit_unconfirmed_total',
      help: 'VALID answers of rate-limited keys given past this instance’s confirmed claim: what the overshoot across instances is made of.',
      registers,
      collect() {
        this.reset();
        this.inc(limiter.stats.unconfirmed);
      },
    });
    new Gauge({
      name: 'apikeys_rate_limit_local_only',
      help: '1 while rate-limit counters cannot be exchanged and this instance counts alone.',
      registers,
      collect() {
        this.set(limiter.localOnly ? 1 : 0);
      },
    });
  }

  /** Cache counters are read from KeyCache.stats at scrape time: nothing extra on the hot path. */
  observeCache(cache: KeyCache): void {
    const registers = [this.registry];
    new Counter({
      name: 'apikeys_verify_cache_lookups_total',
      help: 'Verify cache lookups: hit (no storage read), miss (storage read), unconfirmed (cached key re-read because no change-log poll succeeded within VERIFY_REVOCATION_BOUND_MS).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, cache.stats.hits);
        this.inc({ result: 'miss' }, cache.stats.misses);
        this.inc({ result: 'unconfirmed' }, cache.stats.unconfirmed);
      },
    });
    new Counter({
      name: 'apikeys_verify_cache_evictions_total',
      help: 'Verify cache evictions: capacity (LRU), invalidated (key changed), expired (past TTL).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(cache.stats.evictions)) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: 'apikeys_verify_cache_entries',
      help: 'Entries in the Verify cache (positive and negative).',
      registers,
      collect() {
        this.set(cache.size);
      },
    });
  }
}

export interface MetricsEndpoint {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics in the Prometheus text format on plain HTTP; anything else is 404. */
export function serveMetrics(metrics: Metrics, addr: string, logger: Logger): Promise<MetricsEndpoint> {
  const { host, port } = splitHostPort(addr);
  const server: HttpServer = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        logger.error({ err }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  // A slow or stuck scraper must not hold shutdown: no keep-alive, short timeouts.
  server.keepAliveTimeout = 1;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as { port: number }).port;
      logger.info({ addr, port: bound }, 'metrics listening on /metrics');
      resolve({
        port: bound,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}
