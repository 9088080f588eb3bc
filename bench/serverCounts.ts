/**
 * The server's own counts of the calls of one run, from its /metrics: h2load sees only HTTP
 * statuses (200 whatever the gRPC status), so each run is checked against what the server says
 * it answered.
 */
import type { Sample } from '../test/support/prometheus';

export interface ServerCounts {
  /** Calls of the method completed, by gRPC code (grpc_server_handled_total). */
  handled: Record<string, number>;
  /** VerifyKey answers by result code, every method's run (apikeys_verify_results_total). */
  verifyResults: Record<string, number>;
}

/** `path`: "/package.Service/Method". */
export function serverCounts(samples: Sample[], path: string): ServerCounts {
  const [, service, method] = path.split('/');
  const handled: Record<string, number> = {};
  const verifyResults: Record<string, number> = {};
  for (const s of samples) {
    if (s.name === 'grpc_server_handled_total' && s.labels.grpc_service === service && s.labels.grpc_method === method) {
      handled[s.labels.grpc_code] = s.value;
    } else if (s.name === 'apikeys_verify_results_total') {
      verifyResults[s.labels.code] = s.value;
    }
  }
  return { handled, verifyResults };
}

/** What grew between two readings of counters by label, leaving out what did not. */
export const minus = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).flatMap(([k, v]) => (v - (before[k] ?? 0) ? [[k, v - (before[k] ?? 0)]] : [])));

export const countsDelta = (before: ServerCounts, after: ServerCounts): ServerCounts => ({
  handled: minus(after.handled, before.handled),
  verifyResults: minus(after.verifyResults, before.verifyResults),
});

/** Calls the server completed in a run: answered, and cut by the client when the duration ended. */
export const handledCalls = (d: ServerCounts) => Object.values(d.handled).reduce((a, b) => a + b, 0);

/**
 * What is wrong with a run, or undefined. The server must have answered OK at least the calls the
 * client counted, and no more calls than the client started (CANCELLED: those it cut when the
 * duration ended); a VerifyKey run must have given `verifyResult` only, any other run no
 * VerifyKey answer at all.
 */
export function runProblem(d: ServerCounts, client: { calls: number; started: number }, verifyResult?: string): string | undefined {
  const { OK = 0, CANCELLED = 0, ...other } = d.handled;
  const results = Object.keys(d.verifyResults);
  if (Object.keys(other).length > 0) return `the server answered ${JSON.stringify(other)}`;
  if (OK < client.calls) return `the server answered ${OK} calls OK, the client counted ${client.calls}`;
  if (OK + CANCELLED > client.started) return `the server completed ${OK + CANCELLED} calls, the client started ${client.started}`;
  if (verifyResult === undefined ? results.length > 0 : results.some((r) => r !== verifyResult) || !(d.verifyResults[verifyResult] >= OK)) {
    return `VerifyKey results ${JSON.stringify(d.verifyResults)}, expected ${verifyResult ? `${OK} or more ${verifyResult}` : 'none'}`;
  }
  return undefined;
}

/**
 * What is wrong with an HTTP run of bench/forwardAuth.ts, or undefined. Every request must have
 * been answered 2xx (forward auth answers 401 to a key it does not accept), and the app's VerifyKey
 * results (`grew`, over the run) must be VALID only: for a scenario that verifies, at least as many
 * as h2load counted answered and no more than it started (those it cut at the end may have been
 * verified); none for the others.
 */
export function httpRunProblem(
  client: { calls: number; started: number; failed: number; notOk: number },
  grew: Record<string, number>,
  verifies: boolean,
): string | undefined {
  if (client.notOk > 0) return `h2load: ${client.notOk} requests answered with a status other than 2xx`;
  if (client.failed > 0) return `h2load: ${client.failed} requests failed`;
  const { VALID = 0, ...other } = grew;
  if (Object.keys(other).length > 0) return `VerifyKey results ${JSON.stringify(grew)}, expected VALID only`;
  if (!verifies) return VALID > 0 ? `${VALID} VALID results from a scenario that does not verify` : undefined;
  if (VALID < client.calls) return `${VALID} VALID results, h2load counted ${client.calls} requests answered`;
  if (VALID > client.started) return `${VALID} VALID results, h2load started ${client.started} requests`;
  return undefined;
}
