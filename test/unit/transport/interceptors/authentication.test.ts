import { status } from '@grpc/grpc-js';
import { once } from 'node:events';
import { createLogger } from '../../../../src/logging/logger';
import { contextOf } from '../../../../src/transport/callContext';
import { Authentication } from '../../../../src/transport/interceptors/authentication';
import { serviceInterceptor } from '../../../../src/transport/interceptors/serviceCall';
import { rawConnection } from '../../../support/rawGrpc';
import { authenticator, service } from './callers';
import { headers, PATH, serve, type Handler } from './harness';

const chain = [serviceInterceptor({ requestIds: () => false, authentication: new Authentication(authenticator, createLogger('silent')) })];

describe('authentication', () => {
  it('gives every concurrent call its own context: caller, organization, request id and method', async () => {
    const srv = await serve(chain, (call) => {
      const { principal, orgId, actingAs, requestId, method } = contextOf(call);
      return { principal, orgId, actingAs, requestId, method };
    });
    try {
      const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => srv.call(service((i % 3) + 1, { 'x-request-id': `r-${i}` }))));
      answers.forEach((a, i) =>
        expect(a.value).toEqual({
          principal: { kind: 'service', id: `service:${(i % 3) + 1}` },
          orgId: '',
          actingAs: false,
          requestId: `r-${i}`,
          method: PATH,
        }),
      );
    } finally {
      srv.stop();
    }
  });

  it('never runs the handler for a call it refuses, for its credential or its acting-as', async () => {
    let ran = false;
    const srv = await serve(chain, () => (ran = true));
    try {
      expect(await srv.call(headers({ authorization: 'Bearer not-a-known-token-but-long-enough' }))).toMatchObject({
        code: status.UNAUTHENTICATED,
        reason: 'INVALID_TOKEN',
      });
      expect(await srv.call()).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'UNAUTHENTICATED' });
      expect(await srv.call(service(1, { 'x-organization-id': 'org_00000000000000000000000000' }))).toMatchObject({
        code: status.PERMISSION_DENIED,
        reason: 'ACTING_AS_FORBIDDEN',
      });
      expect(ran).toBe(false);
    } finally {
      srv.stop();
    }
  });

  it('carries the call’s deadline; Infinity when the client set none', async () => {
    const srv = await serve(chain, (call) => String(contextOf(call).deadline));
    try {
      const before = Date.now();
      const deadline = Number((await srv.call(service(1), { deadlineMs: 60_000 })).value);
      expect(deadline).toBeGreaterThanOrEqual(before + 59_000);
      expect(deadline).toBeLessThanOrEqual(Date.now() + 60_000);
      expect((await srv.call(service(1))).value).toBe('Infinity');
    } finally {
      srv.stop();
    }
  });
});

describe('the context’s signal', () => {
  /** A handler that waits until its call's signal aborts, and reports how. */
  function waitingServer() {
    const aborted: Array<Promise<{ name: string }>> = [];
    let entered: () => void = () => {};
    const handler: Handler = (call) => {
      const signal = contextOf(call).signal!;
      aborted.push(once(signal, 'abort').then(() => signal.reason as DOMException));
      entered();
      return new Promise(() => {});
    };
    const inHandler = () => new Promise<void>((r) => (entered = r));
    return { handler, aborted, inHandler };
  }

  it('aborts with AbortError when the client cancels', async () => {
    const w = waitingServer();
    const srv = await serve(chain, w.handler);
    try {
      const reached = w.inHandler();
      const call = srv.start(service(1));
      await reached;
      call.cancel();
      expect((await call.answer).code).toBe(status.CANCELLED);
      expect(await w.aborted[0]).toMatchObject({ name: 'AbortError' });
    } finally {
      srv.stop();
    }
  });

  it('aborts with TimeoutError when the deadline passes', async () => {
    const w = waitingServer();
    const srv = await serve(chain, w.handler);
    // A raw client: the server's deadline ends the call, not the client's own timer.
    const raw = rawConnection(srv.address);
    try {
      const answer = raw.call(PATH, new Uint8Array(), {
        authorization: String(service(1).get('authorization')[0]),
        'grpc-timeout': '200m',
      });
      expect(await answer).toMatchObject({ code: status.DEADLINE_EXCEEDED });
      expect(await w.aborted[0]).toMatchObject({ name: 'TimeoutError' });
    } finally {
      raw.close();
      srv.stop();
    }
  });

  it('does not abort when the call completes', async () => {
    let signal: AbortSignal | undefined;
    const srv = await serve(chain, (call) => {
      signal = contextOf(call).signal;
      return 'done';
    });
    try {
      expect(await srv.call(service(1))).toMatchObject({ code: status.OK, value: 'done' });
      await new Promise((r) => setImmediate(r));
      expect(signal?.aborted).toBe(false);
    } finally {
      srv.stop();
    }
  });
});
