// Pins how the authentication interceptor's result reaches handlers: grpc-js hands the handler,
// as `call.metadata`, the very Metadata object the interceptor forwarded with next(), so that
// object carries the typed context. A grpc-js upgrade that copies or
// rebuilds the metadata on the way breaks this; these tests then fail loudly instead of every
// call failing at run time with "no call context".
import { Metadata, ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from '@grpc/grpc-js';
import { attachContext, contextOf, RpcContext } from '../../../src/transport/callContext';
import { serve } from './interceptors/harness';

const caller = { kind: 'service', id: 'service:1' } as const;

describe('grpc-js passes the interceptor’s Metadata object to the handler', () => {
  it('is the same object (identity), so the context is found — also after an async step', async () => {
    const forwarded: Metadata[] = [];
    const tagging: ServerInterceptor = (_descriptor, call) =>
      new ServerInterceptingCall(
        call,
        new ResponderBuilder()
          .withStart((next) =>
            next(
              new ServerListenerBuilder()
                .withOnReceiveMetadata((md, nextMd) => {
                  // Authentication is asynchronous: forward on a later turn, as the real one does.
                  setImmediate(() => {
                    const ctx = new RpcContext(caller, String(md.get('tag')[0]), '/m', Infinity);
                    ctx.admit({ principal: caller, orgId: '', actingAs: false });
                    attachContext(md, ctx);
                    forwarded.push(md);
                    nextMd(md);
                  });
                })
                .build(),
            ),
          )
          .build(),
      );
    let seen: Metadata | undefined;
    const srv = await serve([tagging], (call) => {
      seen = call.metadata;
      return contextOf(call).requestId;
    });
    try {
      const md = new Metadata();
      md.set('tag', 'one');
      expect(await srv.call(md)).toMatchObject({ code: status.OK, value: 'one' });
      expect(seen).toBe(forwarded[0]);
    } finally {
      srv.stop();
    }
  });
});

describe('contextOf', () => {
  it('without the interceptor, refuses: nothing a client sends makes a context', async () => {
    const srv = await serve([], (call) => contextOf(call));
    try {
      expect(await srv.call()).toMatchObject({ code: status.INTERNAL, details: expect.stringContaining('no call context') });
    } finally {
      srv.stop();
    }
  });

  it('refuses a context that was never admitted (caller known, organization refused)', () => {
    const md = new Metadata();
    attachContext(md, new RpcContext(caller, 'r', '/m', Infinity));
    expect(() => contextOf({ metadata: md })).toThrow('no call context');
  });
});

describe('RpcContext.signal', () => {
  const ctx = () => new RpcContext(caller, 'r', '/m', Infinity);

  it('aborts, with the reason, when the call is aborted after the signal was read', () => {
    const c = ctx();
    const { signal } = c;
    expect(signal.aborted).toBe(false);
    c.abort(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ name: 'TimeoutError' });
  });

  it('is made already aborted when first read after the abort (it is made lazily)', () => {
    const c = ctx();
    c.abort(false);
    expect(c.signal.aborted).toBe(true);
    expect(c.signal.reason).toMatchObject({ name: 'AbortError' });
    expect(c.signal).toBe(c.signal);
  });
});
