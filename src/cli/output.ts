import type { AuditEvent } from '../gen/apikeys/v1/audit';
import { KeyState, type Key } from '../gen/apikeys/v1/key';
import { LeakOutcome, type DailyKeyUsage, type LeakedSecretResult, type Organization } from '../gen/apikeys/v1/key_service';
import { VerifyCode } from '../gen/apikeys/v1/verify_service';

import type { Io } from './command';

// What keyctl prints: tables and key details for people, indented JSON with --json.

const STATE: Partial<Record<number, string>> = {
  [KeyState.KEY_STATE_UNSPECIFIED]: '?',
  [KeyState.KEY_STATE_ACTIVE]: 'ACTIVE',
  [KeyState.KEY_STATE_EXPIRED]: 'EXPIRED',
  [KeyState.KEY_STATE_ARCHIVED]: 'ARCHIVED',
  [KeyState.KEY_STATE_REVOKED]: 'REVOKED',
};

/** A key state's name; a newer server may send a state this keyctl does not know. */
export const stateName = (state: number) => STATE[state] ?? String(state);

/** The key a response carries: the service always sends one, so a missing key is a broken server. */
export function answeredKey(key: Key | undefined): Key {
  if (!key) throw new Error('the service answered without a key');
  return key;
}

/** RFC 3339 to the second, or `none`. */
export const when = (d?: Date, none = '-') => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : none);

export const asJson = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function keyTable(keys: Key[]): string {
  if (keys.length === 0) return '(no keys)\n';
  return table(
    ['ID', 'NAME', 'STATE', 'ENV', 'SCOPES', 'KEY', 'CREATED', 'LAST USED', 'EXPIRES'],
    keys.map((k) => [
      k.id,
      k.name,
      stateName(k.state),
      k.environment,
      k.scopes.join(','),
      k.maskedKey,
      when(k.createTime),
      when(k.lastUsedTime, 'never'),
      when(k.expireTime, 'never'),
    ]),
  );
}

export function keyDetails(k: Key): string {
  const rows: [string, string][] = [
    ['id', k.id],
    ['name', k.name],
    ['state', stateName(k.state)],
    ['organization', k.orgId],
    ['workspace', k.workspaceId || '-'],
    ['environment', k.environment],
    ['scopes', k.scopes.join(', ')],
    ['key', k.maskedKey],
    ['fingerprint', k.fingerprint],
    [
      'metadata',
      Object.keys(k.metadata).length
        ? Object.entries(k.metadata)
            .map(([a, b]) => `${a}=${b}`)
            .join(', ')
        : '-',
    ],
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

export function secretBlock(secret: string): string {
  return `\nsecret (shown once — store it now; it cannot be read again):\n  ${secret}\n`;
}

export function auditTable(events: AuditEvent[]): string {
  if (events.length === 0) return '(no events)\n';
  return table(
    ['TIME', 'ACTION', 'KEY', 'ACTOR', 'ACTING AS', 'OUTCOME', 'REQUEST'],
    events.map((e) => [when(e.time), e.action, e.keyId || '-', e.actor, e.actingAs || '-', e.outcome, e.requestId]),
  );
}

/** The result codes a day of usage counts, in the contract's order. */
const USAGE_COLUMNS: [string, VerifyCode][] = [
  ['VALID', VerifyCode.VERIFY_CODE_VALID],
  ['EXPIRED', VerifyCode.VERIFY_CODE_EXPIRED],
  ['REVOKED', VerifyCode.VERIFY_CODE_REVOKED],
  ['ARCHIVED', VerifyCode.VERIFY_CODE_ARCHIVED],
  ['INSUFFICIENT_SCOPE', VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE],
  ['RATE_LIMITED', VerifyCode.VERIFY_CODE_RATE_LIMITED],
];

export function usageTable(days: DailyKeyUsage[]): string {
  if (days.length === 0) return '(no verifications)\n';
  return table(
    ['DAY', 'TOTAL', ...USAGE_COLUMNS.map(([name]) => name)],
    days.map((d) => [
      d.day,
      String(d.total),
      ...USAGE_COLUMNS.map(([, code]) => String(d.counts.find((c) => c.code === code)?.count ?? 0)),
    ]),
  );
}

/** An error on stderr: `{"error": {message, …fields}}` with --json, else the message and a hint. */
export function printError(io: Io, json: boolean, message: string, hint?: string, fields: Record<string, unknown> = {}): void {
  if (json) io.err(asJson({ error: { message, ...fields } }));
  else io.err(`keyctl: ${message}\n${hint ? `${hint}\n` : ''}`);
}

export function organizationCard(o: Organization | undefined): string {
  if (!o) throw new Error('the service answered without an organization');
  return table(
    ['ORGANIZATION', 'KEY LIMIT', 'LIVE KEYS', 'FREE PLACES'],
    [[o.id, `${o.keyLimit}${o.keyLimitSet ? '' : ' (default)'}`, String(o.activeKeys), String(o.freePlaces)]],
  );
}

const OUTCOME: Partial<Record<number, string>> = {
  [LeakOutcome.LEAK_OUTCOME_REVOKED]: 'REVOKED',
  [LeakOutcome.LEAK_OUTCOME_ALREADY_ENDED]: 'ALREADY_ENDED',
  [LeakOutcome.LEAK_OUTCOME_UNKNOWN]: 'UNKNOWN',
};

/** One row per reported secret, by its line number in the input: never the secret itself. */
export function leakTable(results: LeakedSecretResult[]): string {
  return table(
    ['LINE', 'OUTCOME', 'KEY', 'ORGANIZATION'],
    results.map((r, i) => [String(i + 1), OUTCOME[r.outcome] ?? String(r.outcome), r.keyId || '-', r.orgId || '-']),
  );
}
