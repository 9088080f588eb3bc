import { ListAuditEventsResponse } from '../../gen/apikeys/v1/key_service';
import type { Command } from '../command';
import { auditTable } from '../output';
import { pageSize, stringFlag, timeFlag } from '../parse';
import { PAGING, runListing } from './listing';

export const audit: Command = {
  summary: 'list audit events, newest first',
  usage: 'audit [--key KEY_ID] [--action key.create] [--since TIME] [--until TIME] [--limit N] [--page-token T | --all]',
  options: {
    key: { type: 'string' },
    action: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    ...PAGING,
  },
  args: [],
  needsToken: true,
  async run(c) {
    const v = c.values;
    const req = {
      pageSize: pageSize(v),
      keyId: stringFlag(v, 'key'),
      action: stringFlag(v, 'action'),
      startTime: timeFlag(v, 'since'),
      endTime: timeFlag(v, 'until'),
    };
    await runListing(c, {
      page: async (pageToken) => {
        const page = await c.conn.keys.listAuditEvents({ ...req, pageToken }, c.conn.md(), c.conn.opts);
        return { items: page.events, next: page.nextPageToken };
      },
      json: (events, nextPageToken) => ListAuditEventsResponse.toJSON({ events, nextPageToken }),
      table: auditTable,
      what: 'events',
      command: 'audit',
    });
  },
};
