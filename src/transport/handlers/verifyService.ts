import {
  KeyChangeKind,
  ResetReason,
  VerifyCode,
  type VerifyServiceServer,
  type WatchKeyChangesResponse,
} from '../../gen/apikeys/v1/verify_service';
import type { Duration } from '../../gen/google/protobuf/duration';
import { authorizeVerify } from '../../domain/authorization';
import type { ChangeFeed, FeedMessage, ResetReason as ResetReasonName } from '../../domain/changeFeed';
import type { KeyChange } from '../../domain/model';
import type { UsageReports } from '../../domain/usageReports';
import type { VerifyCodeName, Verifier } from '../../domain/verification';
import type { Logger } from '../../logging/logger';
import type { Metrics } from '../../observability/metrics';
import { failStream, serverStream } from './serverStream';
import { unary } from './unary';

const CODE: Record<VerifyCodeName, VerifyCode> = {
  VALID: VerifyCode.VERIFY_CODE_VALID,
  MALFORMED: VerifyCode.VERIFY_CODE_MALFORMED,
  NOT_FOUND: VerifyCode.VERIFY_CODE_NOT_FOUND,
  REVOKED: VerifyCode.VERIFY_CODE_REVOKED,
  ARCHIVED: VerifyCode.VERIFY_CODE_ARCHIVED,
  EXPIRED: VerifyCode.VERIFY_CODE_EXPIRED,
  INSUFFICIENT_SCOPE: VerifyCode.VERIFY_CODE_INSUFFICIENT_SCOPE,
  RATE_LIMITED: VerifyCode.VERIFY_CODE_RATE_LIMITED,
};

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

const duration = (ms: number): Duration => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

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

/** Results about the presented key are answers, not RPC errors; only the caller's own problems are errors. */
export function verifyServiceHandlers({ verifier, feed, usageReports, logger, metrics }: VerifyServiceDeps): VerifyServiceServer {
  return {
    verifyKey: unary(logger, async (req, ctx) => {
      authorizeVerify(ctx);
      const { code, key, rate } = await verifier.verify(req.key, req.requiredScopes);
      metrics?.verifyResult(code);
      return {
        valid: code === 'VALID',
        code: CODE[code],
        keyId: key?._id ?? '',
        orgId: key?.org_id ?? '',
        workspaceId: key?.workspace_id ?? '',
        scopes: key?.scopes ?? [],
        metadata: key?.metadata ?? {},
        expireTime: key?.expires_at_ms != null ? new Date(key.expires_at_ms) : undefined,
        rateLimit: rate && { limit: rate.limit, remaining: rate.remaining, resetTime: new Date(rate.resetAt) },
      };
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
}
