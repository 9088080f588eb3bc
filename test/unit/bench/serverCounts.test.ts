import { countsDelta, handledCalls, httpRunProblem, minus, runProblem, serverCounts } from '../../../bench/serverCounts';
import { parseMetrics } from '../../support/prometheus';

const VERIFY = '/apikeys.v1.VerifyService/VerifyKey';
const handled = (method: string, code: string, n: number, service = 'apikeys.v1.VerifyService') =>
  `grpc_server_handled_total{grpc_service="${service}",grpc_method="${method}",grpc_code="${code}"} ${n}`;
const scrape = (...lines: string[]) => parseMetrics(lines.join('\n'));

describe("the server's counts of a run", () => {
  const before = serverCounts(
    scrape(
      handled('VerifyKey', 'OK', 10),
      handled('Check', 'OK', 99, 'grpc.health.v1.Health'),
      'apikeys_verify_results_total{code="VALID"} 10',
    ),
    VERIFY,
  );

  it("keeps the method's calls by gRPC code and VerifyKey's results, and nothing of other methods", () => {
    expect(before).toEqual({ handled: { OK: 10 }, verifyResults: { VALID: 10 } });
  });

  it('subtracts, leaving out what did not change and counting what appeared', () => {
    const after = serverCounts(
      scrape(
        handled('VerifyKey', 'OK', 1010),
        handled('VerifyKey', 'CANCELLED', 64),
        handled('Check', 'OK', 5000, 'grpc.health.v1.Health'),
        'apikeys_verify_results_total{code="VALID"} 1074',
      ),
      VERIFY,
    );
    const d = countsDelta(before, after);
    expect(d).toEqual({ handled: { OK: 1000, CANCELLED: 64 }, verifyResults: { VALID: 1064 } });
    expect(handledCalls(d)).toBe(1064);
  });
});

describe('runProblem', () => {
  const client = { calls: 1000, started: 1064 };

  it('accepts a run the server answered as the client counted, calls cut at the end as CANCELLED', () => {
    expect(runProblem({ handled: { OK: 1000, CANCELLED: 64 }, verifyResults: { VALID: 1064 } }, client, 'VALID')).toBeUndefined();
    expect(runProblem({ handled: { OK: 1000 }, verifyResults: {} }, client)).toBeUndefined();
  });

  it('reports another gRPC code', () => {
    expect(runProblem({ handled: { OK: 1000, UNAUTHENTICATED: 5 }, verifyResults: {} }, client)).toMatch(/UNAUTHENTICATED/);
  });

  it('reports fewer OK answers than the client counted, or more calls than it started', () => {
    expect(runProblem({ handled: { OK: 999 }, verifyResults: {} }, client)).toMatch(/999 calls OK, the client counted 1000/);
    expect(runProblem({ handled: { OK: 1000, CANCELLED: 65 }, verifyResults: {} }, client)).toMatch(/completed 1065 calls/);
  });

  it('reports VerifyKey results other than the expected one, too few of them, or any for another method', () => {
    const ok = { OK: 1000 };
    expect(runProblem({ handled: ok, verifyResults: { VALID: 990, NOT_FOUND: 10 } }, client, 'VALID')).toMatch(/NOT_FOUND/);
    expect(runProblem({ handled: ok, verifyResults: { VALID: 900 } }, client, 'VALID')).toMatch(/1000 or more VALID/);
    expect(runProblem({ handled: ok, verifyResults: {} }, client, 'VALID')).toMatch(/1000 or more VALID/);
    expect(runProblem({ handled: ok, verifyResults: { VALID: 3 } }, client)).toMatch(/expected none/);
  });
});

describe('httpRunProblem', () => {
  const client = { calls: 1000, started: 1032, failed: 0, notOk: 0 };

  it('accepts a forward-auth run with as many VALID results as requests, those cut at the end included', () => {
    expect(httpRunProblem(client, { VALID: 1000 }, true)).toBeUndefined();
    expect(httpRunProblem(client, { VALID: 1032 }, true)).toBeUndefined();
  });

  it('accepts a ceiling run with no results at all', () => {
    expect(httpRunProblem(client, {}, false)).toBeUndefined();
  });

  it('reports answers other than 2xx (a 401: the key was not accepted) and failed requests', () => {
    expect(httpRunProblem({ ...client, failed: 3, notOk: 3 }, { VALID: 1000 }, true)).toMatch(
      /3 requests answered with a status other than 2xx/,
    );
    expect(httpRunProblem({ ...client, failed: 2 }, { VALID: 1000 }, true)).toMatch(/2 requests failed/);
  });

  it('reports too few or too many VALID results, other results, or results from a scenario that does not verify', () => {
    expect(httpRunProblem(client, { VALID: 999 }, true)).toMatch(/999 VALID results, h2load counted 1000/);
    expect(httpRunProblem(client, { VALID: 1033 }, true)).toMatch(/h2load started 1032/);
    expect(httpRunProblem(client, { VALID: 1000, NOT_FOUND: 1 }, true)).toMatch(/expected VALID only/);
    expect(httpRunProblem(client, { VALID: 7 }, false)).toMatch(/7 VALID results from a scenario that does not verify/);
  });
});

describe('minus', () => {
  it('keeps what grew, including labels that appeared, and drops what did not change', () => {
    expect(minus({ VALID: 15, NOT_FOUND: 2, REVOKED: 1 }, { VALID: 10, REVOKED: 1 })).toEqual({ VALID: 5, NOT_FOUND: 2 });
  });
});
