// A real grpc-js server on an ephemeral port with only the interceptors under test in front of
// one raw-bytes method (and the same method under a health-check path), and a client that
// reports everything a caller sees: code, ErrorInfo reason, headers, trailers, answer.
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerInterceptor,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { decodeStatusDetails } from '../../../../src/client/statusDetails';

export const PATH = '/test.Echo/Call';
export const HEALTH_PATH = '/grpc.health.v1.Health/Check';

const raw = (b: Buffer) => b;
const method = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
});

/** Answers with JSON of what it returns; a throw answers INTERNAL with the error's message. */
export type Handler = (call: ServerUnaryCall<Buffer, Buffer>) => unknown;

export interface Answer {
  code: status;
  details: string;
  reason?: string;
  value?: unknown;
  /** Response headers; undefined for a trailers-only answer. */
  headers?: Metadata;
  trailers: Metadata;
}

export interface CallOptions {
  path?: string;
  /** Milliseconds from now. */
  deadlineMs?: number;
}

export async function serve(interceptors: ServerInterceptor[], handler: Handler) {
  const server = new Server({ interceptors });
  const run = (call: ServerUnaryCall<Buffer, Buffer>, cb: (e: Partial<ServiceError> | null, r?: Buffer) => void) => {
    Promise.resolve()
      .then(() => handler(call))
      .then(
        (v) => cb(null, Buffer.from(JSON.stringify(v ?? null))),
        (err: unknown) => cb({ code: status.INTERNAL, details: err instanceof Error ? err.message : String(err) }),
      );
  };
  server.addService({ call: method(PATH) }, { call: run });
  server.addService({ check: method(HEALTH_PATH) }, { check: run });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());

  /** Starts a call; `answer` settles with what the client saw, `cancel` cancels it. */
  function start(md = new Metadata(), options: CallOptions = {}) {
    let headers: Metadata | undefined;
    let value: unknown;
    let cancel = () => {};
    const answer = new Promise<Answer>((resolve) => {
      const deadline = options.deadlineMs === undefined ? undefined : Date.now() + options.deadlineMs;
      const call = client.makeUnaryRequest(options.path ?? PATH, raw, raw, Buffer.alloc(0), md, { deadline }, (_e, r) => {
        if (r) value = JSON.parse(r.toString());
      });
      cancel = () => call.cancel();
      call.on('metadata', (m: Metadata) => (headers = m));
      call.on('status', (st) => {
        const reason = decodeStatusDetails({ metadata: st.metadata }).errorInfo?.reason;
        resolve({ code: st.code, details: st.details, reason, value, headers, trailers: st.metadata });
      });
    });
    return { answer, cancel: () => cancel() };
  }

  return {
    address: `127.0.0.1:${port}`,
    start,
    call: (md?: Metadata, options?: CallOptions) => start(md, options).answer,
    stop: () => {
      client.close();
      server.forceShutdown();
    },
  };
}

/** Metadata with these headers set. */
export function headers(h: Record<string, string | string[]>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(h)) for (const one of [v].flat()) md.add(k, one);
  return md;
}
