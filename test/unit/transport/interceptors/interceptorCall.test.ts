// InterceptorCall passes grpc-js's events straight through, without grpc-js's per-call listener
// and responder machinery: what a handler and a client see must not change for it.
import { Metadata, status, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { interceptor, InterceptorCall } from '../../../../src/transport/interceptors/interceptorCall';
import { exceptOpenServices } from '../../../../src/transport/interceptors/openServices';
import { HEALTH_PATH, serve } from './harness';

/** Records the events it sees; tags response headers and trailers; optionally holds the request metadata a turn. */
class Recording extends InterceptorCall {
  constructor(
    next: ServerInterceptingCallInterface,
    private readonly seen: string[],
    private readonly holdMetadata: boolean,
  ) {
    super(next);
  }

  override onReceiveMetadata(metadata: Metadata): void {
    this.seen.push('metadata');
    if (this.holdMetadata) setImmediate(() => super.onReceiveMetadata(metadata));
    else super.onReceiveMetadata(metadata);
  }

  override sendMetadata(metadata: Metadata): void {
    this.seen.push('headers');
    metadata.set('x-tag', 'h');
    super.sendMetadata(metadata);
  }

  override sendStatus(status: PartialStatusObject): void {
    this.seen.push('status');
    const metadata = status.metadata ?? new Metadata();
    metadata.set('x-tag', 't');
    super.sendStatus({ ...status, metadata });
  }

  override onCancel(): void {
    this.seen.push('cancel');
    super.onCancel();
  }
}

const recording = (seen: string[], holdMetadata = false): ServerInterceptor =>
  interceptor((_descriptor, call) => new Recording(call, seen, holdMetadata));

describe('InterceptorCall', () => {
  it('sends the headers an interceptor adds before a unary answer, and its trailers', async () => {
    const seen: string[] = [];
    const srv = await serve([recording(seen), recording([])], () => 'answer');
    try {
      const a = await srv.call();
      expect(a).toMatchObject({ code: status.OK, value: 'answer' });
      expect(a.headers?.get('x-tag')).toEqual(['h']);
      expect(a.trailers.get('x-tag')).toEqual(['t']);
      // The handler never sent headers itself: the outer part saw them exactly once, before the status.
      expect(seen.filter((e) => e !== 'cancel')).toEqual(['metadata', 'headers', 'status']);
    } finally {
      srv.stop();
    }
  });

  it('delivers the request when an interceptor passes the metadata on a later turn', async () => {
    const srv = await serve([recording([]), recording([], true)], (call) => call.metadata.get('who')[0]);
    try {
      const md = new Metadata();
      md.set('who', 'me');
      expect(await srv.call(md)).toMatchObject({ code: status.OK, value: 'me' });
    } finally {
      srv.stop();
    }
  });

  it('tells every part and the handler when the client cancels', async () => {
    const seen: string[] = [];
    let handlerCancelled!: () => void;
    const cancelledInHandler = new Promise<void>((resolve) => (handlerCancelled = resolve));
    const srv = await serve([recording(seen), recording(seen)], (call) => {
      call.on('cancelled', () => handlerCancelled());
      return new Promise(() => {}); // never answers
    });
    try {
      const c = srv.start();
      await new Promise((r) => setTimeout(r, 50));
      c.cancel();
      expect((await c.answer).code).toBe(status.CANCELLED);
      await cancelledInHandler;
      expect(seen.filter((e) => e === 'cancel')).toHaveLength(2);
    } finally {
      srv.stop();
    }
  });

  it('exceptOpenServices: health calls pass by every interceptor it wraps', async () => {
    const seen: string[] = [];
    const srv = await serve([exceptOpenServices(recording(seen), recording(seen))], () => 'ok');
    try {
      const health = await srv.call(undefined, { path: HEALTH_PATH });
      expect(health).toMatchObject({ code: status.OK, value: 'ok' });
      expect(health.trailers.get('x-tag')).toEqual([]);
      expect(seen).toEqual([]);
      expect((await srv.call()).trailers.get('x-tag')).toEqual(['t']);
      expect(seen.filter((e) => e === 'status')).toHaveLength(2);
    } finally {
      srv.stop();
    }
  });
});
