// The access log's policy: which answered calls get a line, and what a sampled line says.
import { Metadata } from '@grpc/grpc-js';
import type { Logger } from '../../../../src/logging/logger';
import { AccessLog, type AccessLogShare } from '../../../../src/transport/interceptors/accessLog';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { HEALTH_PATH, PATH, serve } from './harness';

async function linesFor(shareOf: AccessLogShare, calls: Array<{ fail?: boolean; path?: string }>) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = { info: (line: Record<string, unknown>) => lines.push(line) } as unknown as Logger;
  const srv = await serve([serviceInterceptor({ accessLog: new AccessLog(logger, shareOf) })], (call) => {
    if (call.metadata.get('fail').length > 0) throw new Error('handler failed');
    return 'ok';
  });
  try {
    for (const c of calls) {
      const md = new Metadata();
      if (c.fail) md.set('fail', '1');
      await srv.call(md, { path: c.path });
    }
  } finally {
    srv.stop();
  }
  return lines;
}

describe('access-log policy', () => {
  it('logs every call of a method whose share is 1, without a sampleRate', async () => {
    const lines = await linesFor(() => 1, [{}, {}, { fail: true }]);
    expect(lines.map((l) => l.code)).toEqual(['OK', 'OK', 'INTERNAL']);
    for (const l of lines) expect(l.sampleRate).toBeUndefined();
    expect(lines[0]).toMatchObject({ method: PATH, callerKind: 'anonymous', durationMs: expect.any(Number) });
  });

  it('at share 0 logs no successful call, and every failed one', async () => {
    const lines = await linesFor(() => 0, [{}, { fail: true }, {}, { fail: true }]);
    expect(lines.map((l) => l.code)).toEqual(['INTERNAL', 'INTERNAL']);
    for (const l of lines) expect(l.sampleRate).toBeUndefined();
  });

  it('marks a sampled line with the rate it was sampled at', async () => {
    // 1 − 1e-9: in practice every call is sampled, and still goes through the sampling path.
    const share = 1 - 1e-9;
    const lines = await linesFor(() => share, [{}, { fail: true }]);
    expect(lines).toEqual([
      expect.objectContaining({ code: 'OK', sampleRate: share }),
      expect.objectContaining({ code: 'INTERNAL', sampleRate: undefined }),
    ]);
  });

  it('asks the policy per method', async () => {
    const lines = await linesFor((path) => (path === PATH ? 0 : 1), [{}, { path: HEALTH_PATH }]);
    expect(lines.map((l) => l.method)).toEqual([HEALTH_PATH]);
  });
});

describe('request ids of sampled methods', () => {
  it('a logged success the caller sent no id for gets one in its trailers, the one its line names; an unlogged one gets none', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = { info: (line: Record<string, unknown>) => lines.push(line) } as unknown as Logger;
    let share = 1 - 1e-9;
    const srv = await serve([serviceInterceptor({ accessLog: new AccessLog(logger, () => share), requestIds: () => true })], () => 'ok');
    try {
      const logged = await srv.call();
      share = 0;
      const unlogged = await srv.call();
      expect(lines).toEqual([expect.objectContaining({ code: 'OK', requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) })]);
      expect(logged.trailers.get('x-request-id')).toEqual([lines[0].requestId]);
      expect(unlogged.trailers.get('x-request-id')).toEqual([]);
    } finally {
      srv.stop();
    }
  });
});
