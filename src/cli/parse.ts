import { UsageError, type Values } from './command';

// Flag values → request fields; a bad value is a UsageError naming the flag.

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

/** An RFC 3339 time flag; undefined when it was not given. */
export function timeFlag(v: Values, name: string): Date | undefined {
  return typeof v[name] === 'string' ? parseTime(v[name], name) : undefined;
}

export function parseScopes(text: string): string[] {
  const scopes = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (scopes.length === 0) throw new UsageError('--scopes needs at least one scope, e.g. --scopes read,write');
  return scopes;
}

export function parseMeta(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const i = e.indexOf('=');
    if (i <= 0) throw new UsageError(`--meta must be key=value (got "${e}")`);
    out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

export function parseRateLimit(text: string): { limit: number; windowSeconds: number } {
  const m = /^(\d+)\/(\w+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--rate-limit must be <count>/<window>, e.g. 100/60s or 5000/1h (got "${text}")`);
  return { limit: Number(m[1]), windowSeconds: parseDuration(m[2], 'rate-limit') };
}

/** --expires or --ttl (not both) → the expiry; undefined when neither is given. */
export function expiry(v: Values): Date | undefined {
  if (v.expires && v.ttl) throw new UsageError('give --expires or --ttl, not both');
  if (typeof v.expires === 'string') return parseTime(v.expires, 'expires');
  if (typeof v.ttl === 'string') return new Date(Date.now() + parseDuration(v.ttl, 'ttl') * 1000);
  return undefined;
}

export function pageSize(v: Values): number | undefined {
  if (typeof v.limit !== 'string') return undefined;
  const n = Number(v.limit);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit must be a positive integer (got "${v.limit}")`);
  return n;
}

/** A string flag's value; '' when it was not given (proto3's "unset"). */
export const stringFlag = (v: Values, name: string): string => (typeof v[name] === 'string' ? v[name] : '');
