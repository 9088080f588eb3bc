import type { AuditEvent } from '../../gen/apikeys/v1/audit';
import { ListAuditEventsResponse } from '../../gen/apikeys/v1/key_service';
import type { Command } from '../command';
import { asJson, auditTable } from '../output';
import { pageSize, parseTime, stringFlag } from '../parse';

export const audit: Command = {
  summary: 'list audit events, newest first',
  usage: 'audit [--key KEY_ID] [--action key.create] [--since TIME] [--until TIME] [--limit N] [--page-token T | --all]',
  options: {
    key: { type: 'string' },
    action: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    'page-token': { type: 'string' },
    all: { type: 'boolean' },
  },
  args: [],
  needsToken: true,
  async run(c) {
    const v = c.values;
    const req = {
      pageSize: pageSize(v),
      keyId: stringFlag(v, 'key'),
      action: stringFlag(v, 'action'),
      startTime: typeof v.since === 'string' ? parseTime(v.since, 'since') : undefined,
      endTime: typeof v.until === 'string' ? parseTime(v.until, 'until') : undefined,
    };
    const events: AuditEvent[] = [];
    let next = stringFlag(v, 'page-token');
    do {
      const page = await c.conn.keys.listAuditEvents({ ...req, pageToken: next }, c.conn.md(), c.conn.opts);
      events.push(...page.events);
      next = page.nextPageToken;
    } while (v.all === true && next);
    if (c.json) return c.io.out(asJson(ListAuditEventsResponse.toJSON({ events, nextPageToken: next })));
    c.io.out(auditTable(events));
    if (next) c.io.out(`\nmore events: keyctl audit --page-token ${next}   (or --all)\n`);
  },
};
