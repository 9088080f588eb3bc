import { Metadata, status } from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { decodeStatusDetails, startTestServer, type TestServer } from '../support/server';
import { GetKeyRequest } from '../../src/gen/apikeys/v1/key_service';
import { newId } from '../../src/domain/ids';

let s: TestServer;
beforeAll(async () => { s = await startTestServer('probe'); });
afterAll(() => s.stop());

async function tryCall(md: Metadata) {
  try { await s.clients.keys.listKeys({}, md); return 'OK'; }
  catch (e: any) { return `${status[e.code]} ${decodeStatusDetails(e).errorInfo?.reason} ${e.details}`; }
}

function raw(headers: Record<string, string | string[]>): Promise<any> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://${s.address}`);
    c.on('error', reject);
    const body = GetKeyRequest.encode({ id: newId('key') }).finish();
    const frame = Buffer.alloc(5 + body.length); frame.writeUInt32BE(body.length, 1); Buffer.from(body).copy(frame, 5);
    const req = c.request({ ':method': 'POST', ':path': '/apikeys.v1.KeyService/GetKey', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let out: any = {};
    req.on('response', (h) => { out.headers = h; });
    req.on('trailers', (t) => { out.trailers = t; });
    req.on('data', () => {});
    req.on('end', () => { c.close(); resolve(out); });
    req.on('error', (e) => { c.close(); resolve({ error: String(e) }); });
    req.end(frame);
  });
}

it('probes', async () => {
  const tok = await s.userToken();
  const md = new Metadata(); md.add('authorization', `Bearer ${tok}`); md.add('authorization', 'Bearer x');
  console.log('dup auth', await tryCall(md));
  const md2 = new Metadata(); md2.add('authorization', `Bearer ${tok}`); md2.add('x-request-id', 'a'); md2.add('x-request-id', 'b');
  console.log('dup rid', await tryCall(md2));
  for (const n of [8000, 15000, 17000, 40000, 70000, 200000]) {
    const m = new Metadata(); m.set('authorization', 'Bearer ' + 'a'.repeat(n));
    console.log('size', n, await tryCall(m));
  }
  const m3 = new Metadata(); m3.set('authorization', `Bearer ${tok}`); m3.set('x-pad', 'a'.repeat(20000));
  console.log('valid + 20k pad', await tryCall(m3));
  console.log('raw latin1', JSON.stringify(await raw({ authorization: `Bearer ${tok}\u00e9` })));
  console.log('raw latin1 only', JSON.stringify(await raw({ authorization: `\u00ff\u00fe` })));
  console.log('raw dup', JSON.stringify(await raw({ authorization: [`Bearer ${tok}`, `Bearer ${tok}`] })));
  console.log('raw ok', JSON.stringify(await raw({ authorization: `Bearer ${tok}` })));
  const mb = new Metadata(); mb.set('authorization-bin', Buffer.from([0, 1, 255])); 
  console.log('bin', await tryCall(mb));
  console.log(s.logs.slice(-3).join(''));
});
