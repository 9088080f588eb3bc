import { Server } from '@grpc/grpc-js';
import { createServer } from 'node:http2';
import { installLeanPath, type LeanMethod } from '../../../src/transport/leanUnary';

const limits = { maxReceiveMessageBytes: 1024, maxSendMessageBytes: 1024 };
const method = { definition: { path: '/p.S/M' }, handler: () => undefined } as unknown as LeanMethod;

describe('installLeanPath', () => {
  it('installs nothing on a server that is not listening (no HTTP/2 server to put it on)', () => {
    expect(installLeanPath(new Server(), [method], [], limits)).toEqual({ active: false, served: 0 });
  });

  it('installs nothing without methods to serve', () => {
    const http2Server = createServer();
    const grpcJs = () => undefined;
    http2Server.on('stream', grpcJs);
    const fake = { http2Servers: new Map([[http2Server, {}]]), onStreamOpened: () => undefined } as unknown as Server;
    expect(installLeanPath(fake, [], [], limits).active).toBe(false);
    expect(http2Server.listeners('stream')).toEqual([grpcJs]);
  });

  it('changes nothing when grpc-js is not what it was written for: the stream handler stays grpc-js’s', () => {
    // A server whose internals look otherwise: its HTTP/2 server has two stream listeners.
    const http2Server = createServer();
    const grpcJs = () => undefined;
    http2Server.on('stream', grpcJs);
    http2Server.on('stream', () => undefined);
    const fake = { http2Servers: new Map([[http2Server, {}]]), onStreamOpened: () => undefined } as unknown as Server;
    expect(installLeanPath(fake, [method], [], limits).active).toBe(false);
    expect(http2Server.listeners('stream')[0]).toBe(grpcJs);
  });

  it('puts itself in front of the one stream handler of each HTTP/2 server', () => {
    const http2Server = createServer();
    const grpcJs = () => undefined;
    http2Server.on('stream', grpcJs);
    const fake = { http2Servers: new Map([[http2Server, {}]]), onStreamOpened: () => undefined } as unknown as Server;
    expect(installLeanPath(fake, [method], [], limits).active).toBe(true);
    expect(http2Server.listeners('stream')).toHaveLength(1);
    expect(http2Server.listeners('stream')[0]).not.toBe(grpcJs);
  });
});
