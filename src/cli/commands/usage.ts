import { GetKeyUsageResponse } from '../../gen/apikeys/v1/key_service';
import { UsageError, type Command } from '../command';
import { asJson, usageTable } from '../output';
import { timeFlag } from '../parse';

export const usage: Command = {
  summary: 'verifications per UTC day by result, of one key or (without KEY_ID) the whole organization',
  usage: 'usage [KEY_ID] [--from TIME] [--to TIME]   (days from --from’s to --to’s; default the last 30 and today)',
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
  },
  needsToken: true,
  async run(c) {
    if (c.args.length > 1) throw new UsageError(`unexpected argument "${c.args[1]}"`);
    const res = await c.conn.keys.getKeyUsage(
      { keyId: c.args[0] ?? '', startTime: timeFlag(c.values, 'from'), endTime: timeFlag(c.values, 'to') },
      c.conn.md(),
      c.conn.opts,
    );
    c.io.out(c.json ? asJson(GetKeyUsageResponse.toJSON(res)) : usageTable(res.days));
  },
};
