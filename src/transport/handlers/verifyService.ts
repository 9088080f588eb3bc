import {
  KeyChangeKind,
  ResetReason,
  VerifyCode,
  VerifyKeyRequest,
  VerifyKeyResponse,
  VerifyServiceService,
  type VerifyServiceServer,
  type WatchKeyChangesResponse,
} from '../../gen/apikeys/v1/verify_service';
import type { Duration } from '../../gen/google/protobuf/duration';
import { authorizeVerify } from '../../domain/authorization';
import type { ChangeFeed, FeedMessage, ResetReason as ResetReasonName } from '../../domain/changeFeed';
import type { VerifiedKey } from '../../domain/keyCache';
import type { KeyChange } from '../../domain/model';
import type { UsageReports } from '../../domain/usageReports';
import type { VerifyCodeName, VerifyResult, Verifier } from '../../domain/verification';
import type { Logger } from '../../logging/logger';
import type { Metrics } from '../../observability/metrics';
import { failStream, serverStream } from './serverStream';
import { unary } from './unary';

/** Result names to the contract's enum (GetKeyUsage's counts use it too). */
export const VERIFY_CODE: Record<VerifyCodeName, VerifyCode> = {
  VALID: VerifyCode.VERIFY_CODE_VALID,
  MALFORMED: VerifyCode.VERIFY_CODE_MALFORMED,
  NOT_FOUND: VerifyCode.VERIFY_CODE_NOT_FOUND,
  REVOKED: VerifyCode.VERIFY_CODE_REVOKED,
  ARCHIVED: VerifyCode.VERIFY_CODE_ARCHIVED,
  EXPIRED: VerifyCode.VERIFY_CODE_EXPIRED,
  INSUFFICIENT_SCOPE: VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE,
  RATE_LIMITED: VerifyCode.VERIFY_CODE_RATE_LIMITED,
};

/** VerifyKey's answer for a verification's result (also what the forward-auth endpoint decides on). */
export function verifyKeyResponse({ code, key, rate }: VerifyResult): VerifyKeyResponse {
  return {
    valid: code === 'VALID',
    code: VERIFY_CODE[code],
    keyId: key?._id ?? '',
    orgId: key?.org_id ?? '',
    workspaceId: key?.workspace_id ?? '',
    scopes: key?.scopes ?? [],
    metadata: key?.metadata ?? {},
    expireTime: key?.expires_at_ms != null ? new Date(key.expires_at_ms) : undefined,
    rateLimit: rate && { limit: rate.limit, remaining: rate.remaining, resetTime: new Date(rate.resetAt) },
  };
}

const duration = (ms: number): Duration => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

const ENCODED = Symbol('encoded');

/** A response that carries its encoding: built and encoded once, sent many times. */
type Answer = VerifyKeyResponse & { [ENCODED]?: Buffer };

/**
 * What VerifyKey sends about a found key: the fields of its answer, which may be kept, and the
 * age of the key state behind it, which changes with every call. Sent as the kept answer's
 * bytes with key_state_age's appended (a field after the others is the same message).
 */
class AgedAnswer implements VerifyKeyResponse {
  readonly valid: boolean;
  readonly code: VerifyCode;
  readonly keyId: string;
  readonly orgId: string;
  readonly workspaceId: string;
  readonly scopes: string[];
  readonly metadata: Record<string, string>;
  readonly expireTime: Date | undefined;
  readonly rateLimit: VerifyKeyResponse['rateLimit'];

  constructor(
    readonly answer: Answer,
    readonly ageMs: number,
  ) {
    this.valid = answer.valid;
    this.code = answer.code;
    this.keyId = answer.keyId;
    this.orgId = answer.orgId;
    this.workspaceId = answer.workspaceId;
    this.scopes = answer.scopes;
    this.metadata = answer.metadata;
    this.expireTime = answer.expireTime;
    this.rateLimit = answer.rateLimit;
  }

  /** Made only if the whole message is encoded (an answer that is not kept) or read. */
  get keyStateAge(): Duration {
    return duration(this.ageMs);
  }
}

/** Every field at its default, which encodes to nothing. */
const EMPTY = VerifyKeyResponse.create();
/** key_state_age alone, encoded, by milliseconds: ages beyond the revocation bound are rare, and made when needed. */
const AGE_FIELDS: Array<Buffer | undefined> = [];
const KEPT_AGE_FIELDS = 2_000;

function ageField(ms: number): Buffer {
  let field = AGE_FIELDS[ms];
  if (!field) {
    field = encode({ ...EMPTY, keyStateAge: duration(ms) });
    if (ms < KEPT_AGE_FIELDS) AGE_FIELDS[ms] = field;
  }
  return field;
}

/**
 * The message's bytes in a Buffer of their own: an answer kept for long must not hold on to a
 * slab of Buffer's shared pool, as Buffer.from(bytes) would.
 */
function encode(r: VerifyKeyResponse): Buffer {
  const bytes = VerifyKeyResponse.encode(r).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Keys whose last answer is kept: the keys gateways verify again and again, not every cached one. */
const KEPT_ANSWERS = 1024;

/**
 * VerifyKey's answers, encoded once. An answer without rate-limit figures is a function of the
 * result code and the cache entry, which is immutable (a changed key is a new entry): such
 * answers are kept for keyless results, and for up to KEPT_ANSWERS entries, the oldest leaving
 * first. Encoding one took ~2 µs, a few per cent of a cached VerifyKey's CPU.
 */
export class VerifyAnswers {
  private readonly byKey = new Map<VerifiedKey, Answer>();
  private readonly keyless = new Map<VerifyCodeName, Answer>();

  answer(result: VerifyResult): VerifyKeyResponse {
    if (result.rate) return verifyKeyResponse(result); // "remaining" changes with every call
    const { key, code } = result;
    const kept = key ? this.byKey.get(key) : this.keyless.get(code);
    if (kept?.code === VERIFY_CODE[code]) return kept;
    const a: Answer = verifyKeyResponse(result);
    a[ENCODED] = encode(a);
    if (!key) this.keyless.set(code, a);
    else {
      this.byKey.delete(key);
      this.byKey.set(key, a);
      // Oldest first: Maps iterate in insertion order.
      if (this.byKey.size > KEPT_ANSWERS) {
        const oldest = this.byKey.keys().next();
        if (!oldest.done) this.byKey.delete(oldest.value);
      }
    }
    return a;
  }

  /** The answer with the age of the key's state behind it (VerifyResult.stateAgeMs), when the key was found. */
  sendable(result: VerifyResult): VerifyKeyResponse {
    const a = this.answer(result);
    return result.stateAgeMs === undefined ? a : new AgedAnswer(a, result.stateAgeMs);
  }

  readonly serialize = (r: Answer | AgedAnswer): Buffer => {
    if (!(r instanceof AgedAnswer)) return r[ENCODED] ?? encode(r);
    const kept = r.answer[ENCODED];
    return kept ? Buffer.concat([kept, ageField(r.ageMs)]) : encode(r);
  };
}

/** Field 1 (key) and field 2 (required_scopes), both length-delimited: VerifyKeyRequest's only tags. */
const KEY_TAG = 0x0a;
const SCOPE_TAG = 0x12;

/**
 * VerifyKeyRequest read straight from grpc-js's Buffer when it is the usual one: fields 1 and 2
 * only, ASCII strings. The generated decoder's reader (a DataView, a view and a TextDecoder call
 * per string) took ~0.7 µs and ~600 bytes of every cached VerifyKey. Anything else — another
 * field, a byte past 0x7f, a length past the end — goes to the generated decoder, whose answer
 * (or throw) it then is: on what it reads, this one answers exactly as that one would.
 */
export function decodeVerifyKeyRequest(bytes: Buffer): VerifyKeyRequest {
  const request: VerifyKeyRequest = { key: '', requiredScopes: [] };
  let pos = 0;
  while (pos < bytes.length) {
    const tag = bytes[pos++];
    if (tag !== KEY_TAG && tag !== SCOPE_TAG) return VerifyKeyRequest.decode(bytes);
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= bytes.length || shift > 21) return VerifyKeyRequest.decode(bytes);
      const b = bytes[pos++];
      length |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    const end = pos + length;
    if (end > bytes.length) return VerifyKeyRequest.decode(bytes);
    for (let i = pos; i < end; i++) if (bytes[i] > 0x7f) return VerifyKeyRequest.decode(bytes);
    const text = bytes.toString('latin1', pos, end);
    if (tag === KEY_TAG) request.key = text;
    else request.requiredScopes.push(text);
    pos = end;
  }
  return request;
}

const KIND: Record<KeyChange['kind'], KeyChangeKind> = {
  created: KeyChangeKind.KEY_CHANGE_KIND_CREATED,
  changed: KeyChangeKind.KEY_CHANGE_KIND_CHANGED,
  deleted: KeyChangeKind.KEY_CHANGE_KIND_DELETED,
};

const RESET: Record<ResetReasonName, ResetReason> = {
  POSITION_EXPIRED: ResetReason.RESET_REASON_POSITION_EXPIRED,
  POSITION_UNKNOWN: ResetReason.RESET_REASON_POSITION_UNKNOWN,
  SUBSCRIBER_BEHIND: ResetReason.RESET_REASON_SUBSCRIBER_BEHIND,
};

function toWatchResponse(m: FeedMessage): WatchKeyChangesResponse {
  switch (m.type) {
    case 'change':
      return { position: m.position, event: { $case: 'keyChange', value: { keyId: m.keyId, keyHash: m.hash, kind: KIND[m.kind] } } };
    case 'heartbeat':
      return { position: m.position, event: { $case: 'heartbeat', value: { lag: duration(m.lagMs), interval: duration(m.intervalMs) } } };
    case 'reset':
      return { position: m.position, event: { $case: 'reset', value: { reason: RESET[m.reason] } } };
  }
}

export interface VerifyServiceDeps {
  verifier: Verifier;
  feed: ChangeFeed;
  usageReports: UsageReports;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * VerifyService: its definition, whose VerifyKey responses may come encoded already, and its
 * handlers. Results about the presented key are answers, not RPC errors; only the caller's own
 * problems are errors.
 */
export function verifyService({ verifier, feed, usageReports, logger, metrics }: VerifyServiceDeps) {
  const answers = new VerifyAnswers();
  const answer = (result: VerifyResult): VerifyKeyResponse => {
    metrics?.verifyResult(result.code);
    return answers.sendable(result);
  };
  const handlers: VerifyServiceServer = {
    verifyKey: unary(logger, (req, ctx) => {
      authorizeVerify(ctx);
      const result = verifier.check(req.key, req.requiredScopes);
      return result instanceof Promise ? result.then(answer) : answer(result);
    }),

    watchKeyChanges: serverStream(logger, (req, ctx, call) => {
      authorizeVerify(ctx);
      const unsubscribe = feed.subscribe(req.position, {
        send: (m) => {
          if (!call.cancelled && !call.writableEnded) call.write(toWatchResponse(m));
        },
        get pending() {
          return call.writableLength;
        },
        end: () => call.end(),
        fail: (err) => failStream(call, err, logger),
      });
      call.on('cancelled', unsubscribe);
    }),

    reportUsage: unary(logger, async (req, ctx) => {
      await usageReports.report(
        ctx,
        req.entries.map((e) => ({ keyId: e.keyId, count: e.count, lastUsedTime: e.lastUsedTime })),
      );
      return {};
    }),
  };
  const definition: typeof VerifyServiceService = {
    ...VerifyServiceService,
    verifyKey: { ...VerifyServiceService.verifyKey, requestDeserialize: decodeVerifyKeyRequest, responseSerialize: answers.serialize },
  };
  return { definition, handlers };
}
