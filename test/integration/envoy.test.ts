// A real Envoy (pinned PyPI wheel, tools/proxies/install.sh) with the ext_authz bootstrap of
// docs/gateways.md, run as written (addresses and token substituted), in front of a small upstream,
// pointing at the forward-auth endpoint of a real service through a hop that records the paths
// Envoy asks for. Never skipped: without Envoy it fails and says how to install it.
import { writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { documentedBlock, passingOnProxyCases, proxyBinary, proxyInFront, sharedProxyCases } from '../support/gateway';

/** An HTTP hop to `port` that remembers each request's path: Envoy's own logs do not show ext_authz's. */
async function recordingHop(port: number) {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url!);
    const onward = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    onward.on('error', () => res.destroy());
    req.pipe(onward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    paths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}

describe('Envoy ext_authz in front of an upstream, with the forward-auth endpoint', () => {
  let hop: Awaited<ReturnType<typeof recordingHop>>;
  const proxy = proxyInFront(
    'envoy',
    () => proxyBinary('envoy', 'ENVOY_BIN', 'run tools/proxies/install.sh (as .ci/run does)'),
    async ({ dir, ports, endpoint }) => {
      hop = await recordingHop(ports.apikeys);
      const config = join(dir, 'envoy.yaml');
      writeFileSync(
        config,
        documentedBlock(
          'yaml',
          [
            ['address: 0.0.0.0, port_value: 10000', `address: 127.0.0.1, port_value: ${ports.proxy}`],
            ['uri: "http://127.0.0.1:8080"', `uri: "http://127.0.0.1:${hop.port}"`],
            ['port_value: 8080', `port_value: ${hop.port}`],
            ['port_value: 3000', `port_value: ${ports.upstream}`],
            ['"<one of VERIFY_TOKENS>"', JSON.stringify(endpoint.server.verifyToken)],
          ],
          '### Envoy (HTTP `ext_authz`)',
        ),
      );
      // No hot restart (its shared memory would be shared with other Envoys on the machine); one worker.
      const args = ['--config-path', config, '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warning'];
      return { check: ['--mode', 'validate', ...args], run: args, cleanup: () => hop.close() };
    },
  );

  it('asks the service at /authorize followed by the request path, which the endpoint answers', async () => {
    const { endpoint, admin, through } = proxy();
    const { secret } = await endpoint.server.clients.keys.createKey({ name: 'k', scopes: ['read'] }, admin.metadata);
    hop.paths.length = 0;
    expect((await through({ 'x-api-key': secret })).status).toBe(200);
    expect(hop.paths).toEqual(['/authorize/v1/orders?page=2']);
  });

  passingOnProxyCases(proxy);
  sharedProxyCases(proxy, { passesPunctuatedNames: true });
});
