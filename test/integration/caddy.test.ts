// A real Caddy (Debian's package) with the forward_auth configuration of docs/gateways.md, run as
// written (addresses substituted, the token from Caddy's environment), in front of a small upstream,
// pointing at the forward-auth endpoint of a real service. Never skipped: without Caddy it fails
// and says how to install it (.ci/run installs it).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { documentedBlock, passingOnProxyCases, proxyBinary, proxyInFront, sharedProxyCases, type Ports } from '../support/gateway';

/** The Caddyfile of docs/gateways.md on this test's ports, behind global options that keep Caddy inside `dir` and on plain HTTP. */
function caddyfile(dir: string, ports: Ports): string {
  const site = documentedBlock('caddy', [
    ['api.example.com {', `http://127.0.0.1:${ports.proxy} {`],
    ['forward_auth 127.0.0.1:8080 {', `forward_auth 127.0.0.1:${ports.apikeys} {`],
    ['reverse_proxy 127.0.0.1:3000', `reverse_proxy 127.0.0.1:${ports.upstream}`],
  ]);
  return `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}/data\n}\n\n${site}`;
}

describe('Caddy forward_auth in front of an upstream, with the forward-auth endpoint', () => {
  const proxy = proxyInFront(
    'caddy',
    () => proxyBinary('caddy', 'CADDY_BIN', 'apt-get install -y caddy'),
    ({ dir, ports, endpoint }) => {
      const config = join(dir, 'Caddyfile');
      writeFileSync(config, caddyfile(dir, ports));
      const args = ['--config', config, '--adapter', 'caddyfile'];
      return {
        check: ['validate', ...args],
        run: ['run', ...args],
        // Caddy reads {$APIKEYS_SERVICE_TOKEN} from its environment; HOME and XDG_* keep its files in `dir`.
        env: { ...process.env, APIKEYS_SERVICE_TOKEN: endpoint.server.verifyToken, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      };
    },
  );

  passingOnProxyCases(proxy);
  sharedProxyCases(proxy, { passesPunctuatedNames: true });
});
