import { authorize } from './authorization';
import { DomainError } from './errors';
import { isId, newId } from './ids';
import { positionFromToken, toPage } from './paging';
import type { CallContext } from './principal';
import { normalizePageSize, validateAuditFilter } from './validation';
import type { AuditEntry } from './model';
import type { AuditStore, Clock } from './ports';

/** What happened, for the audit trail: "key.create", "key.revoke", "key.secret.read", … */
export type AuditAction =
  | 'key.create'
  | 'key.get'
  | 'key.list'
  | 'key.update'
  | 'key.revoke'
  | 'key.archive'
  | 'key.reactivate'
  | 'key.delete'
  | 'key.rotate'
  | 'key.secret.read'
  | 'audit.list'
  | 'key.import'
  | 'key.usage'
  | 'organization.get'
  | 'organization.key_limit.set'
  | 'key.lookup'
  | 'key.leak_report';

/** What an event adds beyond its action and key (a limit's old and new value, where a leak was found). Never a secret. */
export type AuditDetails = Record<string, string>;

export interface ListAuditInput {
  pageSize: number;
  pageToken: string;
  action: string;
  keyId: string;
  startTime?: Date;
  endTime?: Date;
}

/** Attempts at writing one audit event before operators are told instead. */
const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_MS = 50;

/** Writes one audit event per audited call, with the real actor (staff acting-as included). */
export class AuditLog {
  constructor(
    private readonly store: AuditStore,
    private readonly now: Clock,
    private readonly pageTokenKey: Buffer,
    /** An event that could not be written after retries: logged and counted, never the caller's failure. */
    private readonly onRecordFailed: (what: string, err: unknown) => void,
  ) {}

  /** ListAuditEvents: the organization's trail, newest first, filtered (AIP-158 pages). */
  list(ctx: CallContext, q: ListAuditInput): Promise<{ events: AuditEntry[]; nextPageToken: string }> {
    return this.around(ctx, 'audit.list', null, false, async () => {
      authorize(ctx, 'read');
      const pageSize = normalizePageSize(q.pageSize);
      validateAuditFilter(q);
      const scope = ['audit', ctx.orgId, q.action, q.keyId, q.startTime?.toISOString() ?? '', q.endTime?.toISOString() ?? ''].join('|');
      const pos = positionFromToken(q.pageToken, scope, this.pageTokenKey);
      const rows = await this.store.list({
        orgId: ctx.orgId,
        action: q.action || undefined,
        keyId: q.keyId || undefined,
        startTime: q.startTime,
        endTime: q.endTime,
        after: pos && { time: new Date(pos.t), id: pos.id },
        limit: pageSize + 1,
      });
      const page = toPage(rows, pageSize, (e) => ({ t: e.time.getTime(), id: e._id }), scope, this.pageTokenKey);
      return { events: page.items, nextPageToken: page.nextPageToken };
    });
  }

  /**
   * Runs `fn` and records its outcome ("OK" or the failure's reason). Mutations are always
   * recorded; reads only when a staff member acts on another organization. The outcome the
   * caller sees is `fn`'s: a change that happened is a success even if its event could not be
   * written (that is retried, then reported), and a failure keeps its own error. `details` are
   * drawn from a success's result.
   */
  async around<T>(
    ctx: CallContext,
    action: AuditAction,
    keyId: string | null | ((result: T) => string),
    mutation: boolean,
    fn: () => Promise<T>,
    details?: (result: T) => AuditDetails,
  ): Promise<T> {
    if (!mutation && !ctx.actingAs) return fn();
    // A create learns its key's id from its result; everything else names it up front.
    const known = typeof keyId === 'function' ? null : keyId;
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      await this.record(ctx, action, known, err instanceof DomainError ? err.reason : 'INTERNAL');
      throw err;
    }
    await this.record(ctx, action, typeof keyId === 'function' ? keyId(result) : known, 'OK', details?.(result));
    return result;
  }

  /** A call refused before it changed anything, recorded as `around` records a failure (no key). */
  refused(ctx: CallContext, action: AuditAction, err: unknown): Promise<void> {
    return this.record(ctx, action, null, err instanceof DomainError ? err.reason : 'INTERNAL');
  }

  /**
   * Records something already done whose organization was known only once it was done (a key
   * found by its secret): `ctx` is the call as it acts in that organization.
   */
  note(ctx: CallContext, action: AuditAction, keyId: string, details?: AuditDetails): Promise<void> {
    return this.record(ctx, action, keyId, 'OK', details);
  }

  private async record(
    ctx: CallContext,
    action: AuditAction,
    keyId: string | null,
    outcome: string,
    details?: AuditDetails,
  ): Promise<void> {
    const event = this.event(ctx, action, keyId, outcome, details);
    for (let attempt = 1; ; attempt++) {
      try {
        // The same _id on every attempt: a write that landed but whose answer was lost is not doubled.
        await this.store.insert(event);
        return;
      } catch (err) {
        if (attempt >= RECORD_ATTEMPTS) {
          this.onRecordFailed(`audit event ${action}`, err);
          return;
        }
        await new Promise((r) => setTimeout(r, RECORD_RETRY_MS * attempt));
      }
    }
  }

  private event(ctx: CallContext, action: AuditAction, keyId: string | null, outcome: string, details?: AuditDetails): AuditEntry {
    const p = ctx.principal;
    return {
      _id: newId('evt'),
      org_id: ctx.orgId,
      actor: p.id,
      acting_as: ctx.actingAs && p.kind === 'user' ? (p.email ?? p.id) : null,
      action,
      // Only well-formed ids: a failed call's raw input does not belong in the trail.
      key_id: keyId && isId('key', keyId) ? keyId : null,
      time: this.now(),
      request_id: ctx.requestId,
      outcome,
      method: ctx.method,
      ...(details && { details }),
    };
  }
}
