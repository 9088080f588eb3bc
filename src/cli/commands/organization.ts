import { GetOrganizationResponse } from '../../gen/apikeys/v1/key_service';
import { UsageError, type Command } from '../command';
import { asJson, organizationCard } from '../output';

// The organization's cap on live keys: read it (admins, staff), set it (staff admins).

export const orgGet: Command = {
  summary: "show the organization's key limit, live keys and free places (admins, staff)",
  usage: 'org get',
  options: {},
  args: [],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.getOrganization({}, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetOrganizationResponse.toJSON(res)) : organizationCard(res.organization));
  },
};

export const orgSetLimit: Command = {
  summary: "set the organization's key limit (staff admins; --org to act on another); ends no key",
  usage: 'org set-limit N   (1 to 1000000; below the live keys, new keys wait until enough end)',
  options: {},
  args: ['N'],
  needsToken: true,
  async run(c) {
    const keyLimit = Number(c.args[0]);
    if (!/^\d+$/.test(c.args[0]) || keyLimit < 1) throw new UsageError(`N must be a positive integer (got "${c.args[0]}")`);
    const res = await c.conn.keys.setOrganizationKeyLimit({ keyLimit }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetOrganizationResponse.toJSON(res)) : organizationCard(res.organization));
  },
};
