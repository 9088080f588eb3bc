import type { Key } from '../../gen/apikeys/v1/key';
import { CreateKeyResponse, GetKeyResponse, GetKeySecretResponse, ListKeysResponse } from '../../gen/apikeys/v1/key_service';
import { UsageError, type Command, type Options } from '../command';
import { answeredKey, asJson, keyDetails, keyTable, secretBlock } from '../output';
import { expiry, pageSize, parseMeta, parseRateLimit, parseScopes, stringFlag, timeFlag } from '../parse';
import { PAGING, runListing } from './listing';

// Issuing, reading and changing keys.

/** The flags of a key's settings, shared by create and update. */
const KEY_FIELDS: Options = {
  name: { type: 'string' },
  scopes: { type: 'string' },
  meta: { type: 'string', multiple: true },
  expires: { type: 'string' },
  ttl: { type: 'string' },
  'rate-limit': { type: 'string' },
};

export const create: Command = {
  summary: 'issue a key (the secret is printed once)',
  usage:
    'create --name NAME --scopes read[,write…] [--env live|test] [--expires TIME | --ttl 30d] [--meta k=v]… ' +
    '[--workspace ID] [--rate-limit 100/60s] [--allow-self-revoke] [--recoverable] [--request-id ID]',
  options: {
    ...KEY_FIELDS,
    env: { type: 'string' },
    workspace: { type: 'string' },
    'allow-self-revoke': { type: 'boolean' },
    recoverable: { type: 'boolean' },
    'request-id': { type: 'string' },
  },
  args: [],
  needsToken: true,
  async run(c) {
    const v = c.values;
    if (typeof v.name !== 'string') throw new UsageError('create needs --name, e.g. --name "billing backend"');
    if (typeof v.scopes !== 'string') throw new UsageError('create needs --scopes, e.g. --scopes read,write');
    const res = await c.conn.keys.createKey(
      {
        name: v.name,
        scopes: parseScopes(v.scopes),
        environment: stringFlag(v, 'env'),
        expireTime: expiry(v),
        metadata: parseMeta((v.meta as string[] | undefined) ?? []),
        workspaceId: stringFlag(v, 'workspace'),
        allowSelfRevoke: v['allow-self-revoke'] === true,
        recoverable: v.recoverable === true,
        requestId: stringFlag(v, 'request-id'),
        rateLimit: typeof v['rate-limit'] === 'string' ? parseRateLimit(v['rate-limit']) : undefined,
      },
      c.conn.md(),
      c.conn.opts,
    );
    c.io.out(c.json ? asJson(CreateKeyResponse.toJSON(res)) : keyDetails(answeredKey(res.key)) + secretBlock(res.secret));
  },
};

export const list: Command = {
  summary: 'list keys, newest first',
  usage:
    'list [--limit N] [--page-token T | --all] [--include-revoked] [--include-archived] [--unused-since TIME] ' +
    '[--workspace ID] [--created-by usr_…|key_…] [--env live|test] [--scope SCOPE]',
  options: {
    ...PAGING,
    'include-revoked': { type: 'boolean' },
    'include-archived': { type: 'boolean' },
    'unused-since': { type: 'string' },
    workspace: { type: 'string' },
    'created-by': { type: 'string' },
    env: { type: 'string' },
    scope: { type: 'string' },
  },
  args: [],
  needsToken: true,
  async run(c) {
    const v = c.values;
    const req = {
      pageSize: pageSize(v),
      includeRevoked: v['include-revoked'] === true,
      includeArchived: v['include-archived'] === true,
      unusedSince: timeFlag(v, 'unused-since'),
      workspaceId: stringFlag(v, 'workspace'),
      createdBy: stringFlag(v, 'created-by'),
      environment: stringFlag(v, 'env'),
      scope: stringFlag(v, 'scope'),
    };
    await runListing(c, {
      page: async (pageToken) => {
        const page = await c.conn.keys.listKeys({ ...req, pageToken }, c.conn.md(), c.conn.opts);
        return { items: page.keys, next: page.nextPageToken };
      },
      json: (keys, nextPageToken) => ListKeysResponse.toJSON({ keys, nextPageToken }),
      table: keyTable,
      what: 'keys',
      command: 'list',
    });
  },
};

export const get: Command = {
  summary: 'show one key',
  usage: 'get KEY_ID',
  options: {},
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.getKey({ id: c.args[0] }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : keyDetails(answeredKey(res.key)));
  },
};

export const update: Command = {
  summary: 'change name, scopes, metadata, expiry or rate limit (only the flags given)',
  usage:
    'update KEY_ID [--name NAME] [--scopes a,b] [--meta k=v]… [--clear-meta] [--expires TIME | --ttl 30d | --never-expires] [--rate-limit 100/60s | --no-rate-limit] [--etag ETAG]',
  options: {
    ...KEY_FIELDS,
    'clear-meta': { type: 'boolean' },
    'never-expires': { type: 'boolean' },
    'no-rate-limit': { type: 'boolean' },
    etag: { type: 'string' },
  },
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const v = c.values;
    const mask: string[] = [];
    const key: Partial<Key> = { id: c.args[0], etag: stringFlag(v, 'etag') };
    if (typeof v.name === 'string') {
      key.name = v.name;
      mask.push('name');
    }
    if (typeof v.scopes === 'string') {
      key.scopes = parseScopes(v.scopes);
      mask.push('scopes');
    }
    if (v.meta || v['clear-meta']) {
      key.metadata = parseMeta((v.meta as string[] | undefined) ?? []);
      mask.push('metadata');
    }
    if (v.expires || v.ttl || v['never-expires']) {
      if (v['never-expires'] && (v.expires || v.ttl)) throw new UsageError('give --never-expires or --expires/--ttl, not both');
      key.expireTime = expiry(v);
      mask.push('expire_time');
    }
    if (v['rate-limit'] || v['no-rate-limit']) {
      key.rateLimit = typeof v['rate-limit'] === 'string' ? parseRateLimit(v['rate-limit']) : undefined;
      mask.push('rate_limit');
    }
    if (mask.length === 0)
      throw new UsageError(
        'nothing to update: give at least one of --name, --scopes, --meta, --clear-meta, --expires, --ttl, --never-expires, --rate-limit, --no-rate-limit',
      );
    const res = await c.conn.keys.updateKey({ key, updateMask: mask }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : keyDetails(answeredKey(res.key)));
  },
};

export const secret: Command = {
  summary: 'read back the secret of a recoverable key (privileged, audited)',
  usage: 'secret KEY_ID',
  options: {},
  args: ['KEY_ID'],
  needsToken: true,
  async run(c) {
    const res = await c.conn.keys.getKeySecret({ id: c.args[0] }, c.conn.md(), c.conn.opts);
    c.io.out(c.json ? asJson(GetKeySecretResponse.toJSON(res)) : `${res.secret}\n`);
  },
};
