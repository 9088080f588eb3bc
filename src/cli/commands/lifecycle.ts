import { GetKeyResponse, RotateKeyResponse } from '../../gen/apikeys/v1/key_service';
import { UsageError, type Command } from '../command';
import { answeredKey, asJson, keyDetails, secretBlock, stateName, when } from '../output';
import { parseDuration, stringFlag } from '../parse';

// A key's state changes: revoke, archive and reactivate, delete, rotate.

export const revoke: Command = {
  summary: 'revoke a key at once (terminal)',
  usage: 'revoke KEY_ID [--comment TEXT]',
  options: { comment: { type: 'string' } },
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.revokeKey({ id: c.args[0], comment: stringFlag(c.values, 'comment') }, c.conn.md(), c.conn.opts);
    if (c.json) c.io.out(asJson(GetKeyResponse.toJSON(res)));
    else {
      const key = answeredKey(res.key);
      c.io.out(`revoked ${key.id}\n` + keyDetails(key));
    }
  },
};

export const archive: Command = {
  summary: 'archive a key (reversible with reactivate)',
  usage: 'archive KEY_ID',
  options: {},
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.archiveKey({ id: c.args[0] }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : `archived ${answeredKey(res.key).id}\n`);
  },
};

export const reactivate: Command = {
  summary: 'bring an archived key back',
  usage: 'reactivate KEY_ID',
  options: {},
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.reactivateKey({ id: c.args[0] }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : `reactivated ${answeredKey(res.key).id}\n`);
  },
};

export const remove: Command = {
  summary: 'delete a key permanently (needs --yes)',
  usage: 'delete KEY_ID --yes',
  options: { yes: { type: 'boolean' } },
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const id = c.args[0];
    if (c.values.yes !== true)
      throw new UsageError(`delete is permanent: repeat with --yes to delete ${id} (or use archive, which is reversible)`);
    await c.conn.keys.deleteKey({ id }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson({ deleted: id }) : `deleted ${id}\n`);
  },
};

export const rotate: Command = {
  summary: 'issue a successor; the old key keeps working for --overlap',
  usage: "rotate KEY_ID [--overlap 24h]   (0 revokes the old key at once; default: the server's)",
  options: { overlap: { type: 'string' } },
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const overlap = typeof c.values.overlap === 'string' ? { seconds: parseDuration(c.values.overlap, 'overlap'), nanos: 0 } : undefined;
    const res = await c.conn.keys.rotateKey({ id: c.args[0], overlap }, c.conn.md(), c.conn.opts);
    const old = res.previousKey;
    c.io.out(
      c.json
        ? asJson(RotateKeyResponse.toJSON(res))
        : keyDetails(answeredKey(res.key)) +
            (old ? `\nprevious key ${old.id}: ${stateName(old.state)}, expires ${when(old.expireTime, 'never')}\n` : '') +
            secretBlock(res.secret),
    );
  },
};
