// The service with its forward-auth endpoint (HTTP_AUTH_ADDR) on a free loopback port, for the
// tests that call it directly or through a proxy.
import type { KeyLookup } from '../../src/domain/ports';
import { startTestServer, type TestServer } from './server';

export interface ForwardAuthServer {
  server: TestServer;
  /** http://127.0.0.1:<port> of the endpoint. */
  base: string;
  /** Runs `work` while Verify's storage reads fail, as they do when the database is unreachable. */
  whileStorageDown<T>(work: () => Promise<T>): Promise<T>;
}

export async function startForwardAuthServer(name: string, env: Record<string, string> = {}): Promise<ForwardAuthServer> {
  let down = false;
  const failable =
    (lookup: KeyLookup): KeyLookup =>
    (hash) =>
      down ? Promise.reject(new Error('storage is down')) : lookup(hash);
  const server = await startTestServer(name, { HTTP_AUTH_ADDR: '127.0.0.1:0', ...env }, { wrapKeyLookup: failable });
  return {
    server,
    base: `http://127.0.0.1:${server.app.httpAuthPort!}`,
    async whileStorageDown(work) {
      down = true;
      try {
        return await work();
      } finally {
        down = false;
      }
    },
  };
}
