#!/usr/bin/env node
/**
 * keyctl — the apikeys command line for backoffice operators, over the generated gRPC client.
 *
 *   keyctl [--addr host:port] [--token T] [--json] <command> [arguments]
 *
 * Exit codes: 0 done, 2 usage error (nothing was sent), 3 the server refused or failed the call
 * (authentication, permission, validation, not found, …), 4 the server could not be reached.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { checkHealth } from '../client/health';
import { connectClients, type ApiKeysClients } from '../client/promiseClient';
import { AuditEvent } from '../gen/apikeys/v1/audit';
import { KeyState, type Key } from '../gen/apikeys/v1/key';
import {
  CreateKeyResponse,
  GetKeyResponse,
  GetKeySecretResponse,
  ListAuditEventsResponse,
  ListKeysResponse,
  RotateKeyResponse,
} from '../gen/apikeys/v1/key_service';
import { decodeStatusDetails } from '../transport/errors';

export const EXIT = { OK: 0, USAGE: 2, SERVER: 3, UNREACHABLE: 4 } as const;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

const GLOBAL: Options = {
  addr: { type: 'string' },
  token: { type: 'string' },
  org: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const KEY_FIELDS: Options = {
  name: { type: 'string' },
  scopes: { type: 'string' },
  meta: { type: 'string', multiple: true },
  expires: { type: 'string' },
  ttl: { type: 'string' },
  'rate-limit': { type: 'string' },
};

interface Command {
  summary: string;
  usage: string;
  options: Options;
  /** Positional arguments after the command name: their names, all required. */
  args: string[];
  needsToken: boolean;
  run(c: Ctx): Promise<void>;
}

interface Ctx {
  clients: ApiKeysClients;
  md: () => Metadata;
  opts: { deadline: Date };
  values: Record<string, string | boolean | string[] | undefined>;
  args: string[];
  json: boolean;
  io: Io;
}

// ---------- value parsing ----------

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** "90s", "15m", "24h", "7d", "2w" or plain seconds → seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} must be a duration like 90s, 15m, 24h, 7d (got "${text}")`);
  return Number(m[1]) * DURATION_UNITS[m[2] || 's'];
}

function parseTime(text: string, flag: string): Date {
  const d = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(d.getTime())) {
    throw new UsageError(`--${flag} must be an RFC 3339 time such as 2027-01-31T00:00:00Z (got "${text}")`);
  }
  return d;
}

function parseScopes(text: string): string[] {
  const scopes = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw new UsageError('--scopes needs at least one scope, e.g. --scopes read,write');
  return scopes;
}

function parseMeta(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i <= 0) throw new UsageError(`--meta must be key=value (got "${e}")`);
    out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

function parseRateLimit(text: string): { limit: number; windowSeconds: number } {
  const m = /^(\d+)\/(\w+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--rate-limit must be <count>/<window>, e.g. 100/60s or 5000/1h (got "${text}")`);
  return { limit: Number(m[1]), windowSeconds: parseDuration(m[2], 'rate-limit') };
}

function expiry(v: Ctx['values']): Date | undefined {
  if (v.expires && v.ttl) throw new UsageError('give --expires or --ttl, not both');
  if (typeof v.expires === 'string') return parseTime(v.expires, 'expires');
  if (typeof v.ttl === 'string') return new Date(Date.now() + parseDuration(v.ttl, 'ttl') * 1000);
  return undefined;
}

function pageSize(v: Ctx['values']): number | undefined {
  if (typeof v.limit !== 'string') return undefined;
  const n = Number(v.limit);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit must be a positive integer (got "${v.limit}")`);
  return n;
}

// ---------- output ----------

const STATE: Record<number, string> = {
  [KeyState.KEY_STATE_UNSPECIFIED]: '?',
  [KeyState.KEY_STATE_ACTIVE]: 'ACTIVE',
  [KeyState.KEY_STATE_EXPIRED]: 'EXPIRED',
  [KeyState.KEY_STATE_ARCHIVED]: 'ARCHIVED',
  [KeyState.KEY_STATE_REVOKED]: 'REVOKED',
};

const when = (d?: Date, none = '-') => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : none);

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function keyTable(keys: Key[]): string {
  if (keys.length === 0) return '(no keys)\n';
  return table(
    ['ID', 'NAME', 'STATE', 'ENV', 'SCOPES', 'KEY', 'CREATED', 'LAST USED', 'EXPIRES'],
    keys.map((k) => [
      k.id,
      k.name,
      STATE[k.state] ?? String(k.state),
      k.environment,
      k.scopes.join(','),
      k.maskedKey,
      when(k.createTime),
      when(k.lastUsedTime, 'never'),
      when(k.expireTime, 'never'),
    ]),
  );
}

function keyDetails(k: Key): string {
  const rows: [string, string][] = [
    ['id', k.id],
    ['name', k.name],
    ['state', STATE[k.state] ?? String(k.state)],
    ['organization', k.orgId],
    ['workspace', k.workspaceId || '-'],
    ['environment', k.environment],
    ['scopes', k.scopes.join(', ')],
    ['key', k.maskedKey],
    ['fingerprint', k.fingerprint],
    ['metadata', Object.keys(k.metadata).length ? Object.entries(k.metadata).map(([a, b]) => `${a}=${b}`).join(', ') : '-'],
    ['rate limit', k.rateLimit ? `${k.rateLimit.limit} per ${k.rateLimit.windowSeconds}s` : '-'],
    ['created', `${when(k.createTime)}${k.createdBy ? ` by ${k.createdBy}` : ''}`],
    ['updated', when(k.updateTime)],
    ['last used', when(k.lastUsedTime, 'never')],
    ['expires', when(k.expireTime, 'never')],
    ['etag', k.etag || '-'],
  ];
  if (k.revokeTime) rows.push(['revoked', `${when(k.revokeTime)} by ${k.revokedBy}${k.revokedComment ? `: ${k.revokedComment}` : ''}`]);
  if (k.archiveTime) rows.push(['archived', when(k.archiveTime)]);
  if (k.rotatedFrom) rows.push(['rotated from', k.rotatedFrom]);
  if (k.replacedBy) rows.push(['replaced by', k.replacedBy]);
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n') + '\n';
}

function secretBlock(secret: string): string {
  return `\nsecret (shown once — store it now; it cannot be read again):\n  ${secret}\n`;
}

const asJson = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

// ---------- commands ----------

const idArg = (c: Ctx) => c.args[0];

const COMMANDS: Record<string, Command> = {
  create: {
    summary: 'issue a key (the secret is printed once)',
    usage:
      'create --name NAME --scopes read[,write…] [--env live|test] [--expires TIME | --ttl 30d] [--meta k=v]… ' +
      '[--workspace ID] [--rate-limit 100/60s] [--allow-self-revoke] [--recoverable] [--request-id ID]',
    options: { ...KEY_FIELDS, env: { type: 'string' }, workspace: { type: 'string' }, 'allow-self-revoke': { type: 'boolean' }, recoverable: { type: 'boolean' }, 'request-id': { type: 'string' } },
    args: [],
    needsToken: true,
    async run(c) {
      const v = c.values;
      if (typeof v.name !== 'string') throw new UsageError('create needs --name, e.g. --name "billing backend"');
      if (typeof v.scopes !== 'string') throw new UsageError('create needs --scopes, e.g. --scopes read,write');
      const res = await c.clients.keys.createKey(
        {
          name: v.name,
          scopes: parseScopes(v.scopes),
          environment: (v.env as string | undefined) ?? '',
          expireTime: expiry(v),
          metadata: parseMeta((v.meta as string[] | undefined) ?? []),
          workspaceId: (v.workspace as string | undefined) ?? '',
          allowSelfRevoke: v['allow-self-revoke'] === true,
          recoverable: v.recoverable === true,
          requestId: (v['request-id'] as string | undefined) ?? '',
          rateLimit: typeof v['rate-limit'] === 'string' ? parseRateLimit(v['rate-limit']) : undefined,
        },
        c.md(),
        c.opts,
      );
      c.io.out(c.json ? asJson(CreateKeyResponse.toJSON(res)) : keyDetails(res.key!) + secretBlock(res.secret));
    },
  },
  list: {
    summary: 'list keys, newest first',
    usage: 'list [--limit N] [--page-token T | --all] [--include-revoked] [--include-archived] [--unused-since TIME]',
    options: {
      limit: { type: 'string' },
      'page-token': { type: 'string' },
      all: { type: 'boolean' },
      'include-revoked': { type: 'boolean' },
      'include-archived': { type: 'boolean' },
      'unused-since': { type: 'string' },
    },
    args: [],
    needsToken: true,
    async run(c) {
      const v = c.values;
      const req = {
        pageSize: pageSize(v),
        pageToken: (v['page-token'] as string | undefined) ?? '',
        includeRevoked: v['include-revoked'] === true,
        includeArchived: v['include-archived'] === true,
        unusedSince: typeof v['unused-since'] === 'string' ? parseTime(v['unused-since'], 'unused-since') : undefined,
      };
      const keys: Key[] = [];
      let next = '';
      do {
        const page = await c.clients.keys.listKeys({ ...req, pageToken: next || req.pageToken }, c.md(), c.opts);
        keys.push(...page.keys);
        next = page.nextPageToken;
      } while (v.all === true && next);
      if (c.json) {
        c.io.out(asJson(ListKeysResponse.toJSON({ keys, nextPageToken: next })));
      } else {
        c.io.out(keyTable(keys));
        if (next) c.io.out(`\nmore keys: keyctl list --page-token ${next}   (or --all)\n`);
      }
    },
  },
  get: {
    summary: 'show one key',
    usage: 'get KEY_ID',
    options: {},
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const res = await c.clients.keys.getKey({ id: idArg(c) }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : keyDetails(res.key!));
    },
  },
  update: {
    summary: 'change name, scopes, metadata, expiry or rate limit (only the flags given)',
    usage: 'update KEY_ID [--name NAME] [--scopes a,b] [--meta k=v]… [--clear-meta] [--expires TIME | --ttl 30d | --never-expires] [--rate-limit 100/60s | --no-rate-limit] [--etag ETAG]',
    options: { ...KEY_FIELDS, 'clear-meta': { type: 'boolean' }, 'never-expires': { type: 'boolean' }, 'no-rate-limit': { type: 'boolean' }, etag: { type: 'string' } },
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const v = c.values;
      const mask: string[] = [];
      const key: Partial<Key> = { id: idArg(c), etag: (v.etag as string | undefined) ?? '' };
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
      if (mask.length === 0) throw new UsageError('nothing to update: give at least one of --name, --scopes, --meta, --clear-meta, --expires, --ttl, --never-expires, --rate-limit, --no-rate-limit');
      const res = await c.clients.keys.updateKey({ key, updateMask: mask }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : keyDetails(res.key!));
    },
  },
  revoke: {
    summary: 'revoke a key at once (terminal)',
    usage: 'revoke KEY_ID [--comment TEXT]',
    options: { comment: { type: 'string' } },
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const res = await c.clients.keys.revokeKey({ id: idArg(c), comment: (c.values.comment as string | undefined) ?? '' }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : `revoked ${res.key!.id}\n` + keyDetails(res.key!));
    },
  },
  archive: {
    summary: 'archive a key (reversible with reactivate)',
    usage: 'archive KEY_ID',
    options: {},
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const res = await c.clients.keys.archiveKey({ id: idArg(c) }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : `archived ${res.key!.id}\n`);
    },
  },
  reactivate: {
    summary: 'bring an archived key back',
    usage: 'reactivate KEY_ID',
    options: {},
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const res = await c.clients.keys.reactivateKey({ id: idArg(c) }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeyResponse.toJSON(res)) : `reactivated ${res.key!.id}\n`);
    },
  },
  delete: {
    summary: 'delete a key permanently (needs --yes)',
    usage: 'delete KEY_ID --yes',
    options: { yes: { type: 'boolean' } },
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      if (c.values.yes !== true) throw new UsageError(`delete is permanent: repeat with --yes to delete ${idArg(c)} (or use archive, which is reversible)`);
      await c.clients.keys.deleteKey({ id: idArg(c) }, c.md(), c.opts);
      c.io.out(c.json ? asJson({ deleted: idArg(c) }) : `deleted ${idArg(c)}\n`);
    },
  },
  rotate: {
    summary: 'issue a successor; the old key keeps working for --overlap',
    usage: 'rotate KEY_ID [--overlap 24h]   (0 revokes the old key at once; default: the server\'s)',
    options: { overlap: { type: 'string' } },
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const overlap = typeof c.values.overlap === 'string' ? { seconds: parseDuration(c.values.overlap, 'overlap'), nanos: 0 } : undefined;
      const res = await c.clients.keys.rotateKey({ id: idArg(c), overlap }, c.md(), c.opts);
      if (c.json) return c.io.out(asJson(RotateKeyResponse.toJSON(res)));
      const old = res.previousKey;
      c.io.out(
        keyDetails(res.key!) +
          (old ? `\nprevious key ${old.id}: ${STATE[old.state]}, expires ${when(old.expireTime, 'never')}\n` : '') +
          secretBlock(res.secret),
      );
    },
  },
  secret: {
    summary: 'read back the secret of a recoverable key (privileged, audited)',
    usage: 'secret KEY_ID',
    options: {},
    args: ['KEY_ID'],
    needsToken: true,
    async run(c) {
      const res = await c.clients.keys.getKeySecret({ id: idArg(c) }, c.md(), c.opts);
      c.io.out(c.json ? asJson(GetKeySecretResponse.toJSON(res)) : `${res.secret}\n`);
    },
  },
  audit: {
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
        keyId: (v.key as string | undefined) ?? '',
        action: (v.action as string | undefined) ?? '',
        startTime: typeof v.since === 'string' ? parseTime(v.since, 'since') : undefined,
        endTime: typeof v.until === 'string' ? parseTime(v.until, 'until') : undefined,
      };
      const events: AuditEvent[] = [];
      let next = (v['page-token'] as string | undefined) ?? '';
      do {
        const page = await c.clients.keys.listAuditEvents({ ...req, pageToken: next }, c.md(), c.opts);
        events.push(...page.events);
        next = page.nextPageToken;
      } while (v.all === true && next);
      if (c.json) return c.io.out(asJson(ListAuditEventsResponse.toJSON({ events, nextPageToken: next })));
      c.io.out(
        events.length === 0
          ? '(no events)\n'
          : table(
              ['TIME', 'ACTION', 'KEY', 'ACTOR', 'ACTING AS', 'OUTCOME', 'REQUEST'],
              events.map((e) => [when(e.time), e.action, e.keyId || '-', e.actor, e.actingAs || '-', e.outcome, e.requestId]),
            ),
      );
      if (next) c.io.out(`\nmore events: keyctl audit --page-token ${next}   (or --all)\n`);
    },
  },
  health: {
    summary: 'ask grpc.health.v1 (no token needed)',
    usage: 'health [SERVICE]   (SERVICE: apikeys.v1.KeyService, apikeys.v1.VerifyService; default: the server)',
    options: {},
    args: [],
    needsToken: false,
    async run() {
      throw new Error('handled in main');
    },
  },
};

function help(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    'keyctl — manage API keys of the apikeys service',
    '',
    'usage: keyctl [global flags] <command> [arguments]',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    'global flags:',
    '  --addr HOST:PORT   service address (env APIKEYS_ADDR; default localhost:50051)',
    '  --token TOKEN      a user JWT or an API key with the needed scopes (env APIKEYS_TOKEN)',
    '  --org ORG_ID       staff only: act on this organization (env APIKEYS_ORG; sent as x-organization-id)',
    '  --json             machine-readable output (errors go to stderr as JSON too)',
    '  --timeout 10s      deadline of the whole command (e.g. 30s, 2m)',
    '',
    'exit codes: 0 ok, 2 usage error, 3 refused or failed by the server, 4 service not reachable',
    "'keyctl help <command>' shows a command's flags.",
    '',
  ].join('\n');
}

function commandHelp(name: string): string {
  return `usage: keyctl [global flags] ${COMMANDS[name].usage}\n\n${COMMANDS[name].summary}\n`;
}

// ---------- errors ----------

interface Failure {
  exit: number;
  message: string;
  hint?: string;
  json: Record<string, unknown>;
}

const HINTS: Partial<Record<number, string>> = {
  [status.UNAUTHENTICATED]: 'check the token: pass --token or set APIKEYS_TOKEN to a valid, unexpired user JWT or API key',
  [status.PERMISSION_DENIED]: 'this credential may not do that (role or key scopes); ask an admin of the organization',
  [status.NOT_FOUND]: "check the id with 'keyctl list' (keys of other organizations are reported as not found)",
  [status.INVALID_ARGUMENT]: "fix the values above; 'keyctl help <command>' shows the flags",
  [status.FAILED_PRECONDITION]: "the key's state does not allow this; see it with 'keyctl get <id>'",
  [status.ABORTED]: "the key changed meanwhile: 'keyctl get <id>' for the new etag, then retry",
  [status.RESOURCE_EXHAUSTED]: 'a limit was reached: revoke or archive unused keys, or raise the organization limit',
  [status.UNIMPLEMENTED]: 'this server does not support the command yet; upgrade the apikeys service',
  [status.UNAVAILABLE]: 'the service cannot reach its database right now; retry shortly',
  [status.INTERNAL]: 'a server-side error; retry, and report it with the request id if it persists',
};

function describeFailure(err: ServiceError, addr: string, timeoutMs: number): Failure {
  let details: ReturnType<typeof decodeStatusDetails> = {};
  try {
    details = decodeStatusDetails(err);
  } catch {
    // not our server's details; report the status alone
  }
  const code = status[err.code] ?? String(err.code);
  const requestId = err.metadata?.get('x-request-id')[0]?.toString();
  // No ErrorInfo and a transport-level code: the call never reached the service.
  if (!details.errorInfo && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED)) {
    const what = err.code === status.DEADLINE_EXCEEDED ? `no answer within ${timeoutMs / 1000}s` : err.details.replace(/\.? ?Resolution note: ?$/, '');
    return {
      exit: EXIT.UNREACHABLE,
      message: `cannot reach the apikeys service at ${addr} (${what})`,
      hint: 'is it running there? set --addr or APIKEYS_ADDR to its host:port (see also --timeout)',
      json: { code, details: err.details, addr },
    };
  }
  const reason = details.errorInfo?.reason;
  const violations = details.badRequest?.fieldViolations ?? [];
  const lines = [`${reason ?? code}${reason ? ` (${code})` : ''}: ${err.details}`];
  for (const v of violations) lines.push(`  ${v.field}: ${v.description}`);
  if (requestId) lines.push(`  request id: ${requestId}`);
  return {
    exit: EXIT.SERVER,
    message: lines.join('\n'),
    hint: HINTS[err.code],
    json: { code, reason, details: err.details, fieldViolations: violations, requestId },
  };
}

const isServiceError = (e: unknown): e is ServiceError =>
  typeof e === 'object' && e !== null && typeof (e as ServiceError).code === 'number' && 'details' in e;

// ---------- main ----------

export async function keyctl(argv: string[], io: Io): Promise<number> {
  const allOptions: Options = { ...GLOBAL };
  for (const c of Object.values(COMMANDS)) Object.assign(allOptions, c.options);
  // First pass, lenient: find the command wherever the global flags are.
  const first = parseArgs({ args: argv, options: allOptions, strict: false, allowPositionals: true });
  const [name, ...rest] = first.positionals;
  const jsonMode = first.values.json === true;
  const fail = (message: string, exit: number, hint?: string, json: Record<string, unknown> = {}) => {
    if (jsonMode) io.err(asJson({ error: { message, ...json } }));
    else io.err(`keyctl: ${message}\n${hint ? `${hint}\n` : ''}`);
    return exit;
  };

  if (!name || name === 'help') {
    const topic = rest[0];
    if (topic && COMMANDS[topic]) io.out(commandHelp(topic));
    else if (topic) return fail(`unknown command "${topic}"`, EXIT.USAGE, "run 'keyctl help' for the list");
    else if (!name && !first.values.help) {
      io.err(help());
      return EXIT.USAGE;
    } else io.out(help());
    return EXIT.OK;
  }
  const command = COMMANDS[name];
  if (!command) return fail(`unknown command "${name}"`, EXIT.USAGE, "run 'keyctl help' for the list");

  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...command.options }, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs' messages go on about positionals after '--'; the first sentence is the point.
    return fail((err as Error).message.split(/\. To specify|\n/)[0], EXIT.USAGE, `usage: keyctl ${command.usage}`);
  }
  const values = parsed.values as Ctx['values'];
  if (values.help) {
    io.out(commandHelp(name));
    return EXIT.OK;
  }
  const args = parsed.positionals.slice(1);
  const addr = (values.addr as string | undefined) ?? io.env.APIKEYS_ADDR ?? 'localhost:50051';
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration((values.timeout as string | undefined) ?? '10s', 'timeout') * 1000;
  } catch (err) {
    return fail((err as Error).message, EXIT.USAGE);
  }

  if (name === 'health') {
    try {
      const answer = await checkHealth(addr, args[0] ?? '', timeoutMs);
      io.out(jsonMode ? asJson({ service: args[0] ?? '', status: answer }) : `${answer}\n`);
      return answer === 'SERVING' ? EXIT.OK : EXIT.SERVER;
    } catch (err) {
      if (!isServiceError(err)) throw err;
      const f = describeFailure(err, addr, timeoutMs);
      return fail(f.message, f.exit, f.hint, f.json);
    }
  }

  if (args.length !== command.args.length) {
    const problem = args.length < command.args.length ? `missing ${command.args[args.length]}` : `unexpected argument "${args[command.args.length]}"`;
    return fail(`${name}: ${problem}`, EXIT.USAGE, `usage: keyctl ${command.usage}`);
  }
  const token = (values.token as string | undefined) ?? io.env.APIKEYS_TOKEN;
  if (command.needsToken && !token) {
    return fail('no credential: pass --token or set APIKEYS_TOKEN', EXIT.USAGE, 'use a user JWT from your identity provider, or an API key with the needed scopes');
  }
  const org = (values.org as string | undefined) ?? io.env.APIKEYS_ORG;

  const clients = connectClients(addr);
  try {
    await command.run({
      clients,
      md: () => {
        const md = new Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        if (org) md.set('x-organization-id', org);
        return md;
      },
      opts: { deadline: new Date(Date.now() + timeoutMs) },
      values,
      args,
      json: jsonMode,
      io,
    });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, EXIT.USAGE, `usage: keyctl ${command.usage}`);
    if (isServiceError(err)) {
      const f = describeFailure(err, addr, timeoutMs);
      return fail(f.message, f.exit, f.hint, f.json);
    }
    throw err;
  } finally {
    clients.close();
  }
}

if (require.main === module) {
  keyctl(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`keyctl: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
