// A real Traefik (pinned PyPI wheel, tools/proxies/install.sh) with the forwardAuth configuration
// and static configuration of docs/gateways.md, run as written (addresses and token
// substituted), in front of a small upstream, pointing at the forward-auth endpoint of a real
// service. Never skipped: without Traefik it fails and says how to install it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { documentedBlock, passingOnProxyCases, proxyBinary, proxyInFront, sharedProxyCases } from '../support/gateway';

describe('Traefik forwardAuth in front of an upstream, with the forward-auth endpoint', () => {
  const proxy = proxyInFront(
    'traefik',
    () => proxyBinary('traefik', 'TRAEFIK_BIN', 'run tools/proxies/install.sh (as .ci/run does)'),
    ({ dir, ports, endpoint }) => {
      const dynamic = join(dir, 'dynamic.yml');
      writeFileSync(
        dynamic,
        documentedBlock(
          'yaml',
          [
            ['url: http://127.0.0.1:3000', `url: http://127.0.0.1:${ports.upstream}`],
            ['address: http://127.0.0.1:8080/authorize', `address: http://127.0.0.1:${ports.apikeys}/authorize`],
            ['"<one of VERIFY_TOKENS>"', JSON.stringify(endpoint.server.verifyToken)],
          ],
          '### Traefik (`forwardAuth`)',
        ),
      );
      // The static configuration of the page, with no calls home; Traefik reads no flags beside a file.
      const staticConfig = join(dir, 'traefik.yml');
      const entryPoint = documentedBlock(
        'yaml',
        [
          ['address: ":80"', `address: "127.0.0.1:${ports.proxy}"`],
          ['filename: /etc/traefik/dynamic.yml', `filename: ${dynamic}`],
        ],
        'The static configuration (`traefik.yml`): an entry point that drops aliased header names.',
      );
      writeFileSync(staticConfig, `${entryPoint}global: { checkNewVersion: false, sendAnonymousUsage: false }\nlog: { level: INFO }\n`);
      return { run: [`--configFile=${staticConfig}`], env: { ...process.env, HOME: dir } };
    },
  );

  passingOnProxyCases(proxy);
  sharedProxyCases(proxy);
});
