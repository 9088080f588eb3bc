import type { AuditLog } from './audit';
import { actingIn, authorizeBackoffice, secretLookupOrg } from './authorization';
import { DomainError } from './errors';
import { newId } from './ids';
import type { KeyManager } from './keys';
import type { StoredKey } from './model';
import type { Clock, KeysBySecret } from './ports';
import type { CallContext } from './principal';
import { Violations } from './validation';

export interface LeakedSecretInput {
  secret: string;
  location: string;
}

export interface LeakReportInput {
  secrets: LeakedSecretInput[];
  reporter: string;
}

export type LeakOutcomeName = 'REVOKED' | 'ALREADY_ENDED' | 'UNKNOWN';

export interface LeakResult {
  outcome: LeakOutcomeName;
  /** The key the secret is; absent when UNKNOWN. */
  key?: { id: string; orgId: string };
}

export interface LeakReport {
  reportId: string;
  /** One per reported secret, in request order. */
  results: LeakResult[];
}

export interface LeakResponseDeps {
  keys: KeysBySecret;
  /** How a presented secret is recognised and hashed: Verifier.lookupHash, VerifyKey's own. */
  lookupHash: (secret: string) => string | null;
  revoker: Pick<KeyManager, 'revokeLeaked'>;
  audit: AuditLog;
  now: Clock;
}

export const LEAK_LIMITS = { secretsMax: 100, reporterMax: 128, locationMax: 256 } as const;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Answers for secrets found where they must not be: which key a secret is (LookupKey), and
 * revoking the keys of a secret scanner's findings (ReportLeakedKeys). A secret names its key in
 * any organization, so these are for staff and internal services only; every key found is
 * audited in its own organization. A secret that is not shaped like a key never reaches storage.
 */
export class LeakResponse {
  constructor(private readonly d: LeakResponseDeps) {}

  async lookup(ctx: CallContext, secret: string): Promise<StoredKey> {
    authorizeBackoffice(ctx, 'secret.lookup');
    const v = new Violations();
    if (secret === '') v.add('secret', 'INVALID_ARGUMENT', 'secret is required');
    v.throwIfAny();
    const hash = this.d.lookupHash(secret);
    const key = hash === null ? undefined : (await this.find(ctx, [hash])).get(hash);
    if (!key) throw new DomainError('KEY_NOT_FOUND', 'no key has this secret');
    await this.d.audit.note(actingIn(ctx, key.org_id), 'key.lookup', key._id);
    return key;
  }

  /**
   * Revokes every reported key not revoked yet — live, retiring, and archived or expired ones
   * too, since those can be brought back (ReactivateKey, a later expire_time) — through
   * RevokeKey's path. Secrets are answered in order: a secret reported twice is revoked by its
   * first occurrence and answered ALREADY_ENDED at the second.
   */
  async report(ctx: CallContext, input: LeakReportInput): Promise<LeakReport> {
    authorizeBackoffice(ctx, 'leak.report');
    const reporter = validateLeakReport(input);
    const reportId = newId('rpt', this.d.now().getTime());
    const hashes = input.secrets.map((s) => this.d.lookupHash(s.secret));
    const found = await this.find(ctx, hashes);
    const results: LeakResult[] = [];
    for (const [i, leaked] of input.secrets.entries()) {
      const hash = hashes[i];
      const key = hash === null ? undefined : found.get(hash);
      if (!key) {
        results.push({ outcome: 'UNKNOWN' });
        continue;
      }
      const location = leaked.location.trim();
      const answer = await this.revoke(ctx, key, reportId, reporter, location);
      if (answer.revoked) found.set(key.hash, answer.revoked);
      results.push({ outcome: answer.outcome, key: answer.outcome === 'UNKNOWN' ? undefined : { id: key._id, orgId: key.org_id } });
    }
    return { reportId, results };
  }

  private async revoke(
    ctx: CallContext,
    key: StoredKey,
    reportId: string,
    reporter: string,
    location: string,
  ): Promise<{ outcome: LeakOutcomeName; revoked?: StoredKey }> {
    const inOrg = actingIn(ctx, key.org_id);
    let outcome: LeakOutcomeName = 'ALREADY_ENDED';
    let revoked: StoredKey | undefined;
    if (key.status !== 'revoked') {
      const comment = `leak reported by ${reporter}${location ? ` at ${location}` : ''}`;
      try {
        revoked = await this.d.revoker.revokeLeaked(inOrg, key._id, `leak_report:${reportId}`, comment);
        outcome = 'REVOKED';
      } catch (err) {
        // Revoked or deleted since it was read: answered as it would have been a moment later.
        const reason = err instanceof DomainError ? err.reason : undefined;
        if (reason === 'KEY_NOT_FOUND') return { outcome: 'UNKNOWN' };
        if (reason !== 'KEY_REVOKED') throw err;
      }
    }
    await this.d.audit.note(inOrg, 'key.leak_report', key._id, { report_id: reportId, reporter, location, outcome });
    return { outcome, revoked };
  }

  /** The keys of these hashes (null: not a key's shape) the caller may find, by hash; no storage read when there are none. */
  private async find(ctx: CallContext, hashes: ReadonlyArray<string | null>): Promise<Map<string, StoredKey>> {
    const wanted = [...new Set(hashes.filter((h) => h !== null))];
    if (wanted.length === 0) return new Map();
    const org = secretLookupOrg(ctx);
    const keys = await this.d.keys.findByHashes(wanted);
    return new Map(keys.filter((k) => org === null || k.org_id === org).map((k) => [k.hash, k]));
  }
}

/** Every violation at once; returns the trimmed reporter. */
function validateLeakReport(input: LeakReportInput): string {
  const v = new Violations();
  const { secrets } = input;
  if (secrets.length === 0) v.add('secrets', 'INVALID_ARGUMENT', 'at least one secret is required');
  if (secrets.length > LEAK_LIMITS.secretsMax) {
    v.add('secrets', 'INVALID_ARGUMENT', `at most ${LEAK_LIMITS.secretsMax} secrets per report; send the rest in another`);
    v.throwIfAny();
  }
  secrets.forEach((s, i) => {
    if (s.secret === '') v.add(`secrets[${i}].secret`, 'INVALID_ARGUMENT', 'secret is required');
    checkText(s.location.trim(), `secrets[${i}].location`, LEAK_LIMITS.locationMax, v);
  });
  const reporter = input.reporter.trim();
  if (reporter === '') v.add('reporter', 'INVALID_ARGUMENT', 'reporter is required, e.g. "github-secret-scanning"');
  else checkText(reporter, 'reporter', LEAK_LIMITS.reporterMax, v);
  v.throwIfAny();
  return reporter;
}

/** Free text that ends up in a key's revoked_comment and the audit trail: bounded, no control characters. */
function checkText(text: string, field: string, max: number, v: Violations): void {
  if (text.length > max || CONTROL.test(text))
    v.add(field, 'INVALID_ARGUMENT', `${field} must be at most ${max} characters, no control characters`);
}
