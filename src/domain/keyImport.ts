import { authorizeImport } from './authorization';
import { DomainError, type Reason } from './errors';
import { newId } from './ids';
import { validateImport, type ImportedKeyInput, type ValidImport } from './importValidation';
import { changeEntry, followUp, keyDocument, planLimitReached } from './keyDocuments';
import type { KeyManagerDeps } from './keys';
import type { StoredKey } from './model';
import type { CallContext } from './principal';
import type { ImportedKeyStore, UsageSink } from './ports';
import type { ForeignKeyFormat } from './secretFormats';

export interface KeyImporterDeps extends Pick<
  KeyManagerDeps,
  'slots' | 'organizations' | 'audit' | 'now' | 'orgKeyLimit' | 'changeLog' | 'onKeyChanged' | 'onFollowUpFailed'
> {
  keys: ImportedKeyStore;
  /** FOREIGN_KEY_FORMATS: the only formats keys may be imported in. */
  formats: readonly ForeignKeyFormat[];
  /** Where last_used_time goes (key_last_used), as the usage flush writes it. */
  usage: UsageSink;
}

/** One entry's outcome, in request order: the stored key, or why it was not imported. */
export type ImportOutcome = { key: StoredKey } | { error: DomainError };

/** The refusals that concern one entry only; any other failure fails the call. */
const PER_ENTRY: readonly Reason[] = ['PLAN_LIMIT_REACHED', 'KEY_ALREADY_EXISTS'];

const alreadyExists = () =>
  // Names neither the key nor its organization: the secret may be another organization's.
  new DomainError('KEY_ALREADY_EXISTS', 'a key with this secret is already stored; it was not imported again');

/**
 * ImportKeys: makes keys issued by another system keys of the caller's organization, without
 * rotating them. The whole request is validated first (nothing is written when any entry is
 * invalid); then each entry takes a place under the key limit, is stored by the SHA-256 of its
 * secret (never the secret), audited as "key.import", and announced on the change log as
 * created, so caches that answered NOT_FOUND for its hash drop that answer. An entry refused
 * for the limit or because its hash is stored already gets its own result; a storage failure
 * fails the call, and keys imported before it stay (retrying answers KEY_ALREADY_EXISTS for them).
 */
export class KeyImporter {
  constructor(private readonly d: KeyImporterDeps) {}

  async import(ctx: CallContext, entries: ImportedKeyInput[]): Promise<ImportOutcome[]> {
    let valid: ValidImport[];
    try {
      authorizeImport(ctx);
      valid = validateImport(entries, this.d.formats, this.d.now());
    } catch (err) {
      await this.d.audit.refused(ctx, 'key.import', err);
      throw err;
    }
    const cap = await this.d.organizations.keyLimit(ctx.orgId, this.d.orgKeyLimit);
    let full = false;
    const outcomes: ImportOutcome[] = [];
    for (const v of valid) {
      try {
        // Once the limit is reached, later entries are refused without asking storage again.
        const store = () => (full ? Promise.reject(planLimitReached(cap)) : this.importOne(ctx, v, cap));
        outcomes.push({ key: await this.d.audit.around(ctx, 'key.import', (k) => k._id, true, store) });
      } catch (err) {
        if (!(err instanceof DomainError) || !PER_ENTRY.includes(err.reason)) throw err;
        full ||= err.reason === 'PLAN_LIMIT_REACHED';
        outcomes.push({ error: err });
      }
    }
    await this.recordLastUse(outcomes);
    return outcomes;
  }

  private async importOne(ctx: CallContext, v: ValidImport, cap: number): Promise<StoredKey> {
    const now = this.d.now();
    const id = newId('key');
    const doc: StoredKey = { ...keyDocument(ctx, v.key, v.shown, id, now, null), created_at: v.createdAt ?? now, format: v.format };
    const slot = await this.d.slots.acquire(ctx.orgId, id, cap, now);
    if (!slot) throw planLimitReached(cap);
    let inserted = false;
    try {
      inserted = await this.d.keys.insertIfNewHash(doc);
    } finally {
      if (!inserted) await this.d.slots.releaseSlot(slot);
    }
    if (!inserted) throw alreadyExists();
    const change = changeEntry(doc, 'created', doc.etag, now);
    await followUp('change log', () => this.d.changeLog.record(change), this.d.onFollowUpFailed);
    // This instance (and its WatchKeyChanges subscribers) drop a cached NOT_FOUND before the call answers.
    this.d.onKeyChanged(doc, change);
    return { ...doc, last_used_at: v.lastUsedAt };
  }

  /** The other system's last uses, where the usage flush keeps them ($max: a later verification wins). */
  private async recordLastUse(outcomes: ImportOutcome[]): Promise<void> {
    const lastUsed = outcomes.flatMap((o) => ('key' in o && o.key.last_used_at ? [{ keyId: o.key._id, at: o.key.last_used_at }] : []));
    if (lastUsed.length === 0) return;
    await followUp(
      'imported last use',
      async () => {
        const outcome = await this.d.usage.write({ lastUsed, daily: [] });
        if (!outcome.ok) throw outcome.error;
      },
      this.d.onFollowUpFailed,
    );
  }
}
