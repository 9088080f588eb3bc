// A gRPC unary call over bare HTTP/2, for header values grpc-js clients refuse to send (latin1
// bytes, tabs): what a hostile or broken client can put on the wire.
import { Metadata } from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { decodeStatusDetails } from '../../src/client/statusDetails';

export interface RawAnswer {
  /** grpc-status, from trailers or a trailers-only response. */
  code: number;
  reason?: string;
  /** BadRequest field violations as "field:REASON". */
  fields: string[];
  requestId?: string;
}

/** One connection for many calls; close it when done. */
export function rawConnection(address: string) {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);

  function call(path: string, message: Uint8Array, headers: http2.OutgoingHttpHeaders): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      Buffer.from(message).copy(frame, 5);
      const req = session.request({
        ...headers,
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let head: http2.IncomingHttpHeaders = {};
      let tail: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (head = h));
      req.on('trailers', (t: http2.IncomingHttpHeaders) => (tail = t));
      req.on('data', () => undefined);
      req.on('error', reject);
      req.on('end', () => {
        const h = { ...head, ...tail };
        const md = new Metadata();
        const details = h['grpc-status-details-bin'];
        if (typeof details === 'string') md.set('grpc-status-details-bin', Buffer.from(details, 'base64'));
        const { errorInfo, badRequest } = decodeStatusDetails({ metadata: md });
        resolve({
          code: Number(h['grpc-status']),
          reason: errorInfo?.reason,
          fields: badRequest?.fieldViolations.map((v) => `${v.field}:${v.reason}`) ?? [],
          requestId: h['x-request-id'] as string | undefined,
        });
      });
      req.end(frame);
    });
  }

  return { call, close: () => session.close() };
}
