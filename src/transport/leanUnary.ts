import {
  Metadata,
  status as Status,
  type handleUnaryCall,
  type Server,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { PerRequestMetricRecorder } from '@grpc/grpc-js/build/src/orca';
import { serverErrorToStatus } from '@grpc/grpc-js/build/src/server-call';
import { StreamDecoder } from '@grpc/grpc-js/build/src/stream-decoder';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';

/**
 * The lean way of a unary method through HTTP/2: the hot path's calls (VerifyKey) skip grpc-js's
 * own per-call machinery — its call object, message queue, promise-based decompression and the
 * handler's event-emitting call — which cost a cached VerifyKey more than everything the service
 * itself does (see docs/decisions/lean-verify-path.md). They still pass through the same
 * interceptors, in the same order, and reach the same handler; on the wire they are answered as
 * grpc-js answers: the same headers, framing, trailers, deadlines, limits and error statuses.
 *
 * Only requests grpc-js would treat plainly take it: a gRPC content type and no compression.
 * Anything else, and every other method, goes to grpc-js's own stream handler unchanged.
 */

/** A unary method served the lean way: its definition (with the server's deserializer) and its handler. */
export interface LeanMethod {
  definition: ServerMethodDefinition<unknown, unknown>;
  handler: handleUnaryCall<unknown, unknown>;
}

export interface LeanLimits {
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
}

type Listener = Parameters<ServerInterceptingCallInterface['start']>[0];
type StreamHandler = (this: unknown, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

/** What of grpc-js's Server this needs and its typings keep private: its HTTP/2 servers and its idle-connection accounting. */
interface ServerInternals {
  http2Servers?: Map<Http2Server, unknown>;
  onStreamOpened?: (stream: ServerHttp2Stream) => void;
}

// As grpc-js answers (server-interceptors.ts): its response headers and its grpc-timeout grammar.
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};
const TRAILERS_ONLY_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' };
const RESPOND_OPTIONS = { waitForTrailers: true };
const DEADLINE = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
/** Request headers grpc-js keeps from the application's metadata. */
const TRANSPORT_HEADERS = ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type'];
const FRAME_PREFIX = 5;

const ignoreError = () => undefined;

/**
 * The bottom of a lean call: what grpc-js's BaseServerInterceptingCall is to the interceptors
 * above it, over one HTTP/2 stream. Request messages are read as they arrive (a unary request is
 * one small message, held at most to the receive limit) and handed up on startRead().
 */
class LeanCall implements ServerInterceptingCallInterface {
  // Assigned in the constructor, not as class fields (see InterceptorCall).
  declare private readonly stream: ServerHttp2Stream;
  declare private readonly method: LeanRoute;
  declare private readonly metadata: Metadata;
  declare private readonly host: string;
  declare private listener: Listener | null;
  declare private deadline: number;
  declare private deadlineTimer: NodeJS.Timeout | null;
  /** Decoded requests and the half-close, in arrival order, until startRead() asks for the next. */
  declare private readonly queue: Array<{ message: unknown } | null>;
  declare private readPending: boolean;
  /** grpc-js's decoder, for requests that do not arrive as one whole frame in one chunk. */
  declare private decoder: StreamDecoder | null;
  declare private metadataSent: boolean;
  declare private statusSent: boolean;
  declare private cancelNotified: boolean;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: LeanRoute) {
    this.stream = stream;
    this.method = method;
    this.host = headers[':authority'] ?? headers.host ?? '';
    this.listener = null;
    this.deadline = Infinity;
    this.deadlineTimer = null;
    this.queue = [];
    this.readPending = false;
    this.decoder = null;
    this.metadataSent = false;
    this.statusSent = false;
    this.cancelNotified = false;
    const metadata = Metadata.fromHttp2Headers(headers);
    const timeout = metadata.get('grpc-timeout');
    if (timeout.length > 0) this.startDeadline(String(timeout[0]));
    for (const h of TRANSPORT_HEADERS) metadata.remove(h);
    this.metadata = metadata;
    // `on`, not `once`: each fires once anyway, and once() wraps every listener in one more closure.
    stream.on('close', () => this.notifyOnCancel());
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.push(null));
  }

  private startDeadline(header: string): void {
    const match = DEADLINE.exec(header);
    if (!match) {
      // As grpc-js: answered once the call is set up.
      process.nextTick(() => this.sendStatus({ code: Status.INTERNAL, details: `Invalid grpc-timeout value "${header}"`, metadata: null }));
      return;
    }
    const ms = (Number(match[1]) * UNIT_MS[match[2]]) | 0;
    this.deadline = Date.now() + ms;
    this.deadlineTimer = setTimeout(
      () => this.sendStatus({ code: Status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: null }),
      ms,
    );
  }

  private onData(chunk: Buffer): void {
    if (this.ended()) return;
    // The usual request: one whole frame within the limit in one chunk. Anything else, an oversized
    // message included, goes to grpc-js's decoder, which refuses it as grpc-js does.
    const max = this.method.limits.maxReceiveMessageBytes;
    const size = chunk.length - FRAME_PREFIX;
    if (this.decoder === null && size >= 0 && chunk.readUInt32BE(1) === size && (max === -1 || size <= max)) {
      this.received(chunk.subarray(FRAME_PREFIX));
      return;
    }
    this.decoder ??= new StreamDecoder(max);
    let frames: Buffer[];
    try {
      frames = this.decoder.write(chunk);
    } catch (err) {
      this.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details: (err as Error).message, metadata: null });
      return;
    }
    for (const frame of frames) {
      if (this.cancelNotified) return; // refused meanwhile (a second message): the rest is not decoded
      this.received(frame.subarray(FRAME_PREFIX));
    }
  }

  /** A request message (its compressed flag ignored, as grpc-js does without grpc-encoding). */
  private received(bytes: Buffer): void {
    let message: unknown;
    try {
      message = this.method.definition.requestDeserialize(bytes);
    } catch {
      this.sendStatus({ code: Status.INTERNAL, details: 'Error deserializing request', metadata: null });
      return;
    }
    this.push({ message });
  }

  private push(entry: { message: unknown } | null): void {
    this.queue.push(entry);
    // A unary call needs one message: past a second, reading waits for the handler's side (as in grpc-js).
    if (this.queue.length > 1) this.stream.pause();
    this.deliver();
  }

  private deliver(): void {
    if (!this.readPending || this.queue.length === 0 || this.listener === null || this.ended()) return;
    this.readPending = false;
    const next = this.queue.shift();
    if (next) this.listener.onReceiveMessage(next.message);
    else this.listener.onReceiveHalfClose();
  }

  /**
   * Whether the call is over: a status went out, or the stream closed. A stream can be destroyed
   * before its close event fires, and writing to it then throws (grpc-js checks the same).
   */
  private ended(): boolean {
    if (!this.cancelNotified && (this.stream.destroyed || this.stream.closed)) this.notifyOnCancel();
    return this.cancelNotified;
  }

  private notifyOnCancel(): void {
    if (this.cancelNotified) return;
    this.cancelNotified = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    // As grpc-js: the listener hears of the end on the next tick, after a status too.
    process.nextTick(notifyListener, this.listener);
    // Whatever else arrives is read and dropped.
    this.stream.resume();
  }

  start(listener: Listener): void {
    if (this.ended()) return;
    this.listener = listener;
    listener.onReceiveMetadata(this.metadata);
  }

  sendMetadata(metadata: Metadata): void {
    if (this.metadataSent || this.ended()) return;
    this.metadataSent = true;
    this.stream.respond({ ...RESPONSE_HEADERS, ...metadata.toHttp2Headers() }, RESPOND_OPTIONS);
  }

  sendMessage(message: unknown, callback: () => void): void {
    if (this.ended()) return;
    let bytes: Buffer;
    try {
      bytes = this.method.definition.responseSerialize(message);
    } catch {
      this.sendStatus({ code: Status.INTERNAL, details: 'Error serializing response', metadata: null });
      return;
    }
    const max = this.method.limits.maxSendMessageBytes;
    if (max !== -1 && bytes.length > max) {
      const details = `Sent message larger than max (${bytes.length + FRAME_PREFIX} vs. ${max})`;
      this.sendStatus({ code: Status.RESOURCE_EXHAUSTED, details, metadata: null });
      return;
    }
    if (!this.metadataSent) this.sendMetadata(new Metadata());
    const frame = Buffer.allocUnsafe(bytes.length + FRAME_PREFIX);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    bytes.copy(frame, FRAME_PREFIX);
    // Written, then the status: HTTP/2 keeps the order, and a failed write ends the stream (close: cancelled).
    this.stream.write(frame);
    callback();
  }

  sendStatus(status: PartialStatusObject): void {
    if (this.statusSent || this.ended()) return;
    this.statusSent = true;
    const trailers = { 'grpc-status': status.code, 'grpc-message': encodeURI(status.details), ...status.metadata?.toHttp2Headers() };
    if (this.metadataSent) {
      this.stream.once('wantTrailers', () => {
        this.stream.sendTrailers(trailers);
        this.notifyOnCancel();
      });
      this.stream.end();
    } else {
      this.stream.respond({ ...trailers, ...TRAILERS_ONLY_HEADERS }, { endStream: true });
      this.notifyOnCancel();
    }
  }

  startRead(): void {
    if (this.ended()) return;
    this.readPending = true;
    if (this.queue.length > 0) this.deliver();
    else if (this.stream.isPaused()) this.stream.resume();
  }

  getPeer(): string {
    const socket = this.stream.session?.socket;
    if (!socket?.remoteAddress) return 'unknown';
    return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : socket.remoteAddress;
  }

  getDeadline(): number {
    return this.deadline;
  }

  getHost(): string {
    return this.host;
  }

  /** The lean path serves plaintext listeners only (installLeanPath): no TLS peer to describe. */
  getAuthContext(): ReturnType<ServerInterceptingCallInterface['getAuthContext']> {
    return {};
  }

  getConnectionInfo(): ReturnType<ServerInterceptingCallInterface['getConnectionInfo']> {
    const socket = this.stream.session?.socket;
    return {
      localAddress: socket?.localAddress,
      localPort: socket?.localPort,
      remoteAddress: socket?.remoteAddress,
      remotePort: socket?.remotePort,
    };
  }

  getMetricsRecorder(): PerRequestMetricRecorder {
    return new PerRequestMetricRecorder();
  }
}

function notifyListener(listener: Listener | null): void {
  listener?.onCancel();
}

/**
 * The handler's side of a lean call, as grpc-js runs a unary handler: one request message, then
 * the handler with this as its call; its callback answers with a message and OK, or a status.
 * The handlers served this way read `request` and `metadata` only (handlers/unary.ts).
 */
class UnaryRun implements Listener {
  declare request: unknown;
  declare metadata: Metadata;
  declare cancelled: boolean;
  declare private received: boolean;
  declare private readonly call: ServerInterceptingCallInterface;
  declare private readonly route: LeanRoute;
  declare private readonly respond: sendUnaryData<unknown>;

  constructor(call: ServerInterceptingCallInterface, route: LeanRoute) {
    this.call = call;
    this.route = route;
    this.request = null;
    this.cancelled = false;
    this.received = false;
    this.respond = (err, value, trailer) => {
      if (err) call.sendStatus(serverErrorToStatus(err, trailer ?? undefined));
      else call.sendMessage(value, () => call.sendStatus({ code: Status.OK, details: 'OK', metadata: trailer ?? null }));
    };
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.metadata = metadata;
    this.call.startRead();
  }

  onReceiveMessage(message: unknown): void {
    if (this.received) {
      this.refuse(`Received a second request message for server streaming method ${this.route.path}`);
      return;
    }
    this.received = true;
    this.request = message;
    this.call.startRead();
  }

  onReceiveHalfClose(): void {
    if (!this.received) {
      this.refuse(`Received no request message for server streaming method ${this.route.path}`);
      return;
    }
    try {
      this.route.handler(this as unknown as ServerUnaryCall<unknown, unknown>, this.respond);
    } catch {
      this.call.sendStatus({ code: Status.UNKNOWN, details: 'Unknown error', metadata: null });
    }
  }

  onCancel(): void {
    this.cancelled = true;
  }

  private refuse(details: string): void {
    this.call.sendStatus({ code: Status.UNIMPLEMENTED, details, metadata: null });
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getDeadline(): ReturnType<ServerInterceptingCallInterface['getDeadline']> {
    return this.call.getDeadline();
  }

  getPath(): string {
    return this.route.path;
  }
}

class LeanRoute {
  readonly path: string;
  readonly definition: ServerMethodDefinition<unknown, unknown>;
  readonly handler: handleUnaryCall<unknown, unknown>;

  constructor(
    method: LeanMethod,
    private readonly interceptors: readonly ServerInterceptor[],
    readonly limits: LeanLimits,
  ) {
    this.path = method.definition.path;
    this.definition = method.definition;
    this.handler = method.handler;
  }

  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const base = new LeanCall(stream, headers, this);
    let call: ServerInterceptingCallInterface = base;
    for (const interceptor of this.interceptors) call = interceptor(this.definition, call);
    call.start(new UnaryRun(call, this));
  }
}

/** Requests grpc-js would read plainly: a gRPC content type, no compression. */
function plain(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  const encoding = headers['grpc-encoding'];
  return typeof type === 'string' && type.startsWith('application/grpc') && (encoding === undefined || encoding === 'identity');
}

/** Whether the lean way is on, and how many calls took it (the tests read it). */
export interface LeanPath {
  readonly active: boolean;
  served: number;
}

/**
 * Puts `methods` on the lean way on every HTTP/2 server `server` listens with (call after
 * binding, insecure credentials only). Returns inactive, and changes nothing, when there are no
 * methods or grpc-js's internals are not what this was written against: the service then runs as
 * before, slower.
 */
export function installLeanPath(
  server: Server,
  methods: readonly LeanMethod[],
  interceptors: readonly ServerInterceptor[],
  limits: LeanLimits,
): LeanPath {
  const internals = server as unknown as ServerInternals;
  const http2Servers = internals.http2Servers instanceof Map ? [...internals.http2Servers.keys()] : [];
  const opened = internals.onStreamOpened;
  const inactive: LeanPath = { active: false, served: 0 };
  if (methods.length === 0 || http2Servers.length === 0 || typeof opened !== 'function') return inactive;
  if (!http2Servers.every((s) => s.listeners('stream').length === 1)) return inactive;
  const routes = new Map(methods.map((m) => [m.definition.path, new LeanRoute(m, interceptors, limits)]));
  const path: LeanPath = { active: true, served: 0 };
  for (const http2Server of http2Servers) {
    const grpcJs = http2Server.listeners('stream')[0] as StreamHandler;
    http2Server.removeListener('stream', grpcJs);
    http2Server.on('stream', function (this: unknown, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) {
      const route = routes.get(headers[':path'] ?? '');
      if (!route || !plain(headers)) {
        grpcJs.call(this, stream, headers, ...rest);
        return;
      }
      // As grpc-js's handler: a stream's error is followed by its close, which ends the call.
      stream.on('error', ignoreError);
      opened.call(server, stream);
      path.served++;
      route.serve(stream, headers);
    });
  }
  return path;
}
