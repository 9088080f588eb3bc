import { EXIT, type Command } from '../command';
import { asJson } from '../output';

export const health: Command = {
  summary: 'ask grpc.health.v1 (no token needed)',
  usage: 'health [SERVICE]   (SERVICE: apikeys.v1.KeyService, apikeys.v1.VerifyService; default: the server)',
  options: {},
  // SERVICE is optional: no arity check.
  needsToken: false,
  async run(c) {
    const service = c.args[0] ?? '';
    const answer = await c.conn.health(service);
    c.io.out(c.json ? asJson({ service, status: answer }) : `${answer}\n`);
    return answer === 'SERVING' ? EXIT.OK : EXIT.SERVER;
  },
};
