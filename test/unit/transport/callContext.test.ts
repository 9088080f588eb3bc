// Pins how the interceptor's result reaches handlers: grpc-js hands the handler, as
// `call.metadata`, the very Metadata object the interceptor forwarded with next(), so a WeakMap
// keyed by that object carries the typed context. A grpc-js upgrade that copies or rebuilds the
// metadata on the way breaks this; these tests then fail loudly instead of every call failing
// at run time with "no call context".
import {
  Client,
  credentials,
  Metadata,
  ResponderBuilder,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptor,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { Authenticator } from '../../../src/domain/authentication';
import type { CallContext } from '../../../src/domain/principal';
import type { Verifier } from '../../../src/domain/verification';
import { createLogger } from '../../../src/logging/logger';
import { attachContext, contextOf } from '../../../src/transport/callContext';
import { authInterceptor } from '../../../src/transport/interceptor';

const PATH = '/test.Context/WhoAmI';
const raw = (b: Buffer) => b;
const SERVICE = {
  whoAmI: {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

type Handler = (call: ServerUnaryCall<Buffer, Buffer>) => unknown;

/** A server whose one handler answers with JSON of whatever `handler` returns (or its error). */
async function serve(interceptors: ServerInterceptor[], handler: Handler) {
  const server = new Server({ interceptors });
  server.addService(SERVICE, {
    whoAmI: (call: ServerUnaryCall<Buffer, Buffer>, cb: (e: Partial<ServiceError> | null, r?: Buffer) => void) => {
      try {
        cb(null, Buffer.from(JSON.stringify(handler(call))));
      } catch (err) {
        cb({ code: status.INTERNAL, details: (err as Error).message });
      }
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const call = (md: Metadata) =>
    new Promise<unknown>((res, rej) =>
      client.makeUnaryRequest(PATH, raw, raw, Buffer.alloc(0), md, (e, r) => (e ? rej(e) : res(JSON.parse(r!.toString())))),
    );
  return {
    call,
    stop: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

describe('grpc-js passes the interceptor’s Metadata object to the handler', () => {
  it('is the same object (identity), so the WeakMap entry is found — also after an async step', async () => {
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
                    attachContext(md, { requestId: String(md.get('tag')[0]) } as CallContext);
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
      expect(await srv.call(md)).toBe('one');
      expect(seen).toBe(forwarded[0]);
    } finally {
      srv.stop();
    }
  });
});

describe('authInterceptor → contextOf, end to end', () => {
  const tokens = Array.from({ length: 3 }, () => randomBytes(24).toString('base64url'));
  const verifier = { verify: async () => ({ code: 'NOT_FOUND' }) } as unknown as Verifier;
  const authenticator = new Authenticator({ keyPrefix: 'sk', jwtMaxAgeSeconds: 86_400, verifyTokens: tokens, staffEmailDomains: [] }, verifier);
  const interceptor = authInterceptor(authenticator, createLogger('silent'));
  const withToken = (token: string, requestId: string) => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    md.set('x-request-id', requestId);
    return md;
  };

  it('gives every concurrent call its own context: caller, request id and method', async () => {
    const srv = await serve([interceptor], (call) => {
      const ctx = contextOf(call);
      return { principal: ctx.principal, requestId: ctx.requestId, method: ctx.method };
    });
    try {
      const calls = Array.from({ length: 60 }, (_, i) => srv.call(withToken(tokens[i % 3], `r-${i}`)));
      const answers = await Promise.all(calls);
      answers.forEach((a, i) =>
        expect(a).toEqual({ principal: { kind: 'service', id: `service:${(i % 3) + 1}` }, requestId: `r-${i}`, method: PATH }),
      );
    } finally {
      srv.stop();
    }
  });

  it('never runs the handler for a call it refuses', async () => {
    let ran = false;
    const srv = await serve([interceptor], () => (ran = true));
    try {
      await expect(srv.call(withToken('not-a-known-token-but-long-enough', 'r'))).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      expect(ran).toBe(false);
    } finally {
      srv.stop();
    }
  });

  it('without the interceptor, contextOf refuses: nothing a client sends makes a context', async () => {
    const srv = await serve([], (call) => contextOf(call));
    try {
      await expect(srv.call(withToken(tokens[0], 'r'))).rejects.toMatchObject({
        code: status.INTERNAL,
        details: expect.stringContaining('no call context'),
      });
    } finally {
      srv.stop();
    }
  });
});
