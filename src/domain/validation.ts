import { DAY_MS, utcDay } from './utcDays';
import { validationError, type FieldViolation, type Reason } from './errors';
import { isId } from './ids';
import type { Environment } from './keyFormat';
import type { KeyFilters } from './model';

/** Pure request validation. Each function returns normalized values or throws one DomainError listing every violation. */

export const LIMITS = {
  nameMax: 128,
  scopesMax: 32,
  metadataEntriesMax: 16,
  metadataValueMax: 512,
  commentMax: 512,
  pageSizeDefault: 20,
  pageSizeMax: 100,
  rateLimitMax: 1_000_000,
  rateWindowMaxSeconds: 86_400,
  usageReportEntriesMax: 1_000,
  /** How far a reported use may be ahead of the server's clock (skew), and how far behind it. */
  usageReportAheadMs: 60_000,
  usageReportBehindMs: 86_400_000,
} as const;

const SCOPE = /^[a-z][a-z0-9_.:-]{0,63}$/;
// Metadata keys become MongoDB field names: no "$", no ".", nothing an operator could hide in.
const METADATA_KEY = /^[A-Za-z0-9_-]{1,64}$/;
const EXTERNAL_ID = /^[A-Za-z0-9_-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface CreateKeyInput {
  name: string;
  scopes: string[];
  environment: string;
  expireTime?: Date;
  metadata: Record<string, string>;
  workspaceId: string;
  allowSelfRevoke: boolean;
  recoverable: boolean;
  requestId: string;
  rateLimit?: { limit: number; windowSeconds: number };
}

export interface ValidCreateKey {
  name: string;
  scopes: string[];
  environment: Environment;
  expiresAt: Date | null;
  metadata: Record<string, string>;
  workspaceId: string | null;
  allowSelfRevoke: boolean;
  recoverable: boolean;
  requestId: string | null;
  rateLimit: { limit: number; window_seconds: number } | null;
}

/** Collects every violation of a request, then throws them as one error. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, reason: Reason, description: string): void {
    this.list.push({ field, reason, description });
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw validationError(this.list);
  }
}

function checkName(raw: string, v: Violations): string {
  const name = raw.trim();
  if (name.length === 0) v.add('name', 'NAME_REQUIRED', 'name is required');
  else if (name.length > LIMITS.nameMax) v.add('name', 'NAME_TOO_LONG', `name must be at most ${LIMITS.nameMax} characters`);
  else if (CONTROL.test(name)) v.add('name', 'INVALID_NAME', 'name must not contain control characters');
  return name;
}

function checkScopes(raw: string[], v: Violations): string[] {
  if (raw.length === 0) v.add('scopes', 'INVALID_SCOPES', 'at least one scope is required, e.g. "read"');
  if (raw.length > LIMITS.scopesMax) v.add('scopes', 'INVALID_SCOPES', `at most ${LIMITS.scopesMax} scopes`);
  raw.slice(0, LIMITS.scopesMax).forEach((s, i) => {
    if (!SCOPE.test(s)) v.add(`scopes[${i}]`, 'INVALID_SCOPES', `scope must match ${SCOPE.source}`);
  });
  return [...new Set(raw)];
}

function checkMetadata(raw: Record<string, string>, v: Violations): Record<string, string> {
  const entries = Object.entries(raw);
  if (entries.length > LIMITS.metadataEntriesMax) {
    v.add('metadata', 'INVALID_METADATA', `at most ${LIMITS.metadataEntriesMax} entries`);
    return {};
  }
  for (const [k, val] of entries) {
    if (!METADATA_KEY.test(k)) v.add('metadata', 'INVALID_METADATA', `key must match ${METADATA_KEY.source}`);
    else if (val.length > LIMITS.metadataValueMax || val.includes('\u0000')) {
      v.add(`metadata["${k}"]`, 'INVALID_METADATA', `value must be at most ${LIMITS.metadataValueMax} characters, no NUL`);
    }
  }
  return Object.fromEntries(entries);
}

/**
 * google.protobuf.Timestamp's range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z: the
 * times every protobuf runtime can convert to RFC 3339. A time outside it, once stored, breaks
 * every client that reads the key back.
 */
const TIMESTAMP_SECONDS = { min: -62_135_596_800, max: 253_402_300_799 };
const TIME_RANGE = 'must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z';
/** google.protobuf.Duration's range: ±10 000 years. */
const DURATION_MAX_SECONDS = 315_576_000_000;
const NANOS_MAX = 999_999_999;

/** Why raw seconds/nanos are not a valid google.protobuf.Timestamp; undefined when they are. */
export function timestampProblem(t: { seconds: number; nanos: number }): string | undefined {
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos > NANOS_MAX) return `nanos must be 0 to ${NANOS_MAX}`;
  if (!Number.isInteger(t.seconds) || t.seconds < TIMESTAMP_SECONDS.min || t.seconds > TIMESTAMP_SECONDS.max) return TIME_RANGE;
  return undefined;
}

/** Why raw seconds/nanos are not a valid google.protobuf.Duration; undefined when they are. */
export function durationProblem(d: { seconds: number; nanos: number }): string | undefined {
  if (!Number.isInteger(d.nanos) || Math.abs(d.nanos) > NANOS_MAX) return `nanos must be -${NANOS_MAX} to ${NANOS_MAX}`;
  if (!Number.isInteger(d.seconds) || Math.abs(d.seconds) > DURATION_MAX_SECONDS) {
    return `seconds must be -${DURATION_MAX_SECONDS} to ${DURATION_MAX_SECONDS} (10 000 years)`;
  }
  if ((d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0)) return 'seconds and nanos must have the same sign';
  return undefined;
}

/** Why a Date cannot be stored and read back as a Timestamp; undefined when it can. */
function timeProblem(t: Date): string | undefined {
  const ms = t.getTime();
  if (Number.isNaN(ms)) return 'is not a valid time';
  return ms < TIMESTAMP_SECONDS.min * 1000 || ms > TIMESTAMP_SECONDS.max * 1000 + 999 ? TIME_RANGE : undefined;
}

/** INVALID_TIMESTAMP for a time outside the Timestamp range, whatever the field. */
function checkTime(t: Date, field: string, v: Violations): boolean {
  const problem = timeProblem(t);
  if (problem) v.add(field, 'INVALID_TIMESTAMP', `${field} ${problem}`);
  return problem === undefined;
}

function checkExpiry(raw: Date | undefined, now: Date, v: Violations): Date | null {
  if (raw === undefined) return null;
  if (checkTime(raw, 'expire_time', v) && raw.getTime() <= now.getTime()) {
    v.add('expire_time', 'INVALID_EXPIRE_TIME', 'expire_time must be in the future');
  }
  return raw;
}

export function validateCreateKey(input: CreateKeyInput, now: Date): ValidCreateKey {
  const v = new Violations();
  const name = checkName(input.name, v);
  const scopes = checkScopes(input.scopes, v);
  const environment = input.environment === '' ? 'live' : input.environment;
  checkEnvironment(environment, v);
  const expiresAt = checkExpiry(input.expireTime, now, v);
  const metadata = checkMetadata(input.metadata, v);
  if (input.workspaceId !== '') checkWorkspace(input.workspaceId, v);
  if (input.requestId !== '' && !EXTERNAL_ID.test(input.requestId)) {
    v.add('request_id', 'INVALID_REQUEST_ID', `request_id must match ${EXTERNAL_ID.source} (a UUID works)`);
  }
  const rateLimit = input.rateLimit ? checkRateLimit(input.rateLimit, v) : null;
  v.throwIfAny();
  return {
    name,
    scopes,
    environment: environment as Environment,
    expiresAt,
    metadata,
    workspaceId: input.workspaceId || null,
    allowSelfRevoke: input.allowSelfRevoke,
    recoverable: input.recoverable,
    requestId: input.requestId || null,
    rateLimit,
  };
}

function checkEnvironment(environment: string, v: Violations): environment is Environment {
  const ok = environment === 'live' || environment === 'test';
  if (!ok) v.add('environment', 'INVALID_ENVIRONMENT', 'environment must be "live" or "test"');
  return ok;
}

function checkWorkspace(workspaceId: string, v: Violations): boolean {
  const ok = EXTERNAL_ID.test(workspaceId);
  if (!ok) v.add('workspace_id', 'INVALID_WORKSPACE_ID', `workspace_id must match ${EXTERNAL_ID.source}`);
  return ok;
}

function checkRateLimit(r: { limit: number; windowSeconds: number }, v: Violations) {
  if (r.limit < 1 || r.limit > LIMITS.rateLimitMax) {
    v.add('rate_limit.limit', 'INVALID_RATE_LIMIT', `limit must be 1–${LIMITS.rateLimitMax}`);
  }
  if (r.windowSeconds < 1 || r.windowSeconds > LIMITS.rateWindowMaxSeconds) {
    v.add('rate_limit.window_seconds', 'INVALID_RATE_LIMIT', `window_seconds must be 1–${LIMITS.rateWindowMaxSeconds}`);
  }
  return { limit: r.limit, window_seconds: r.windowSeconds };
}

export function validateKeyId(id: string, field = 'id'): string {
  if (!isId('key', id)) {
    throw validationError([{ field, reason: 'INVALID_ID', description: 'id must look like key_ followed by 26 base32 characters' }]);
  }
  return id;
}

export function validateComment(comment: string): string {
  const trimmed = comment.trim();
  if (trimmed.length > LIMITS.commentMax || trimmed.includes('\u0000')) {
    throw validationError([
      { field: 'comment', reason: 'INVALID_COMMENT', description: `comment must be at most ${LIMITS.commentMax} characters, no NUL` },
    ]);
  }
  return trimmed;
}

/** AIP-158: 0 means the default; larger than the maximum is coerced down; negative is an error. */
export function normalizePageSize(pageSize: number): number {
  if (pageSize < 0) {
    throw validationError([{ field: 'page_size', reason: 'INVALID_PAGE_SIZE', description: 'page_size must not be negative' }]);
  }
  if (pageSize === 0) return LIMITS.pageSizeDefault;
  return Math.min(pageSize, LIMITS.pageSizeMax);
}

/** AIP-134: the fields UpdateKey may change, by their mask path. */
export const UPDATABLE_FIELDS = ['name', 'scopes', 'metadata', 'expire_time', 'rate_limit'] as const;
type UpdatableField = (typeof UPDATABLE_FIELDS)[number];

export interface UpdateKeyInput {
  name: string;
  scopes: string[];
  metadata: Record<string, string>;
  expireTime?: Date;
  rateLimit?: { limit: number; windowSeconds: number };
}

export interface ValidUpdate {
  name?: string;
  scopes?: string[];
  metadata?: Record<string, string>;
  expires_at?: Date | null;
  rate_limit?: { limit: number; window_seconds: number } | null;
}

/** Only masked fields are read; a masked field left unset clears it where clearing makes sense. */
export function validateUpdateKey(input: UpdateKeyInput, mask: string[], now: Date): ValidUpdate {
  const v = new Violations();
  if (mask.length === 0) {
    v.add('update_mask', 'INVALID_UPDATE_MASK', `update_mask is required; paths: ${UPDATABLE_FIELDS.join(', ')}`);
  }
  for (const path of mask) {
    if (!(UPDATABLE_FIELDS as readonly string[]).includes(path)) {
      v.add(
        'update_mask',
        'INVALID_UPDATE_MASK',
        `"${path}" cannot be updated (output-only, immutable or unknown); paths: ${UPDATABLE_FIELDS.join(', ')}`,
      );
    }
  }
  const has = (f: UpdatableField) => mask.includes(f);
  const out: ValidUpdate = {};
  if (has('name')) out.name = checkName(input.name, v);
  if (has('scopes')) out.scopes = checkScopes(input.scopes, v);
  if (has('metadata')) out.metadata = checkMetadata(input.metadata, v);
  if (has('expire_time')) out.expires_at = checkExpiry(input.expireTime, now, v);
  if (has('rate_limit')) out.rate_limit = input.rateLimit ? checkRateLimit(input.rateLimit, v) : null;
  v.throwIfAny();
  return out;
}

/** RotateKey's overlap in ms: unset → the configured default; 0 → revoke the old key at once. */
export function validateOverlap(
  overlap: { seconds: number; nanos: number } | undefined,
  limits: { maxOverlapSeconds: number; defaultOverlapSeconds: number },
): number {
  if (!overlap) return limits.defaultOverlapSeconds * 1000;
  const problem = durationProblem(overlap);
  if (problem) throw validationError([{ field: 'overlap', reason: 'INVALID_DURATION', description: `overlap: ${problem}` }]);
  const ms = overlap.seconds * 1000 + Math.floor(overlap.nanos / 1e6);
  if (ms < 0 || ms > limits.maxOverlapSeconds * 1000) {
    throw validationError([
      { field: 'overlap', reason: 'INVALID_OVERLAP', description: `overlap must be between 0 and ${limits.maxOverlapSeconds} seconds` },
    ]);
  }
  return ms;
}

const ACTION = /^[a-z][a-z._]{0,63}$/;

export function validateAuditFilter(f: { action: string; keyId: string; startTime?: Date; endTime?: Date }): void {
  const v = new Violations();
  if (f.action !== '' && !ACTION.test(f.action)) v.add('action', 'INVALID_AUDIT_FILTER', 'action must look like "key.create"');
  if (f.keyId !== '' && !isId('key', f.keyId)) v.add('key_id', 'INVALID_ID', 'key_id must be a key_ id');
  for (const [field, t] of [
    ['start_time', f.startTime],
    ['end_time', f.endTime],
  ] as const) {
    if (t) checkTime(t, field, v);
  }
  if (f.startTime && f.endTime && f.startTime > f.endTime)
    v.add('end_time', 'INVALID_AUDIT_FILTER', 'end_time must not be before start_time');
  v.throwIfAny();
}

export function validateOptionalTime(t: Date | undefined, field: string): Date | undefined {
  const v = new Violations();
  if (t) checkTime(t, field, v);
  v.throwIfAny();
  return t;
}

export interface ReportedUse {
  keyId: string;
  count: number;
  lastUsedTime?: Date;
}

/** ReportUsage: every entry well-formed, its time within the skew ahead of `now` and a day behind it. */
export function validateUsageReport(entries: ReportedUse[], now: Date): Array<Required<ReportedUse>> {
  const v = new Violations();
  if (entries.length > LIMITS.usageReportEntriesMax) {
    v.add('entries', 'INVALID_ARGUMENT', `at most ${LIMITS.usageReportEntriesMax} entries per report; send the rest in another`);
    v.throwIfAny();
  }
  const valid: Array<Required<ReportedUse>> = [];
  entries.forEach((e, i) => {
    const at = `entries[${i}]`;
    let ok = true;
    if (!isId('key', e.keyId)) {
      v.add(`${at}.key_id`, 'INVALID_ID', 'key_id must look like key_ followed by 26 base32 characters');
      ok = false;
    }
    if (!Number.isInteger(e.count) || e.count < 1) {
      v.add(`${at}.count`, 'INVALID_ARGUMENT', 'count must be at least 1');
      ok = false;
    }
    const t = e.lastUsedTime;
    if (!t) {
      v.add(`${at}.last_used_time`, 'INVALID_TIMESTAMP', 'last_used_time is required');
    } else if (checkTime(t, `${at}.last_used_time`, v)) {
      if (t.getTime() > now.getTime() + LIMITS.usageReportAheadMs) {
        v.add(`${at}.last_used_time`, 'INVALID_TIMESTAMP', 'last_used_time must not be more than 1 minute ahead of the server’s clock');
      } else if (t.getTime() < now.getTime() - LIMITS.usageReportBehindMs) {
        v.add(`${at}.last_used_time`, 'INVALID_TIMESTAMP', 'last_used_time must be within the last day');
      } else if (ok) {
        valid.push({ keyId: e.keyId, count: e.count, lastUsedTime: t });
      }
    }
  });
  v.throwIfAny();
  return valid;
}

export interface KeyFiltersInput {
  workspaceId: string;
  createdBy: string;
  environment: string;
  scope: string;
}

/** ListKeys filters, each checked as CreateKey checks what it matches; '' is no filter. */
export function validateKeyFilters(f: KeyFiltersInput): KeyFilters {
  const v = new Violations();
  const out: KeyFilters = {};
  if (f.workspaceId !== '' && checkWorkspace(f.workspaceId, v)) out.workspaceId = f.workspaceId;
  if (f.createdBy !== '') {
    if (isId('usr', f.createdBy) || isId('key', f.createdBy)) out.createdBy = f.createdBy;
    else v.add('created_by', 'INVALID_ID', 'created_by must be a user id (usr_…) or a key id (key_…)');
  }
  if (f.environment !== '' && checkEnvironment(f.environment, v)) out.environment = f.environment;
  if (f.scope !== '') {
    if (SCOPE.test(f.scope)) out.scope = f.scope;
    else v.add('scope', 'INVALID_SCOPES', `scope must match ${SCOPE.source}`);
  }
  v.throwIfAny();
  return out;
}

/** GetKeyUsage: the days counted by default before end_time's day, and the longest range. */
export const USAGE_RANGE = { defaultDaysBefore: 30, maxDays: 366 } as const;

/**
 * GetKeyUsage's request: a key id or none (the whole organization), and the UTC days from
 * start_time's to end_time's, both included. end_time defaults to now, start_time to the day
 * 30 days before end_time's; end_time may be at most 366 days after start_time.
 */
export function validateUsageQuery(
  q: { keyId: string; startTime?: Date; endTime?: Date },
  now: Date,
): { keyId: string | null; first: string; last: string } {
  const v = new Violations();
  if (q.keyId !== '' && !isId('key', q.keyId)) v.add('key_id', 'INVALID_ID', 'key_id must look like key_ followed by 26 base32 characters');
  if (q.startTime) checkTime(q.startTime, 'start_time', v);
  if (q.endTime) checkTime(q.endTime, 'end_time', v);
  // A range is only checked between valid times; a key id is checked whatever the times.
  if (v.list.some((x) => x.reason === 'INVALID_TIMESTAMP')) v.throwIfAny();
  const end = q.endTime ?? now;
  const start = q.startTime ?? new Date(Date.parse(utcDay(end)) - USAGE_RANGE.defaultDaysBefore * DAY_MS);
  if (end < start) v.add('end_time', 'INVALID_TIME_RANGE', 'end_time must not be before start_time');
  else if (end.getTime() - start.getTime() > USAGE_RANGE.maxDays * DAY_MS) {
    v.add('end_time', 'INVALID_TIME_RANGE', `end_time must be at most ${USAGE_RANGE.maxDays} days after start_time`);
  }
  v.throwIfAny();
  return { keyId: q.keyId || null, first: utcDay(start), last: utcDay(end) };
}
