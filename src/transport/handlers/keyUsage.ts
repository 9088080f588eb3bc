import type { handleUnaryCall } from '@grpc/grpc-js';
import type { DailyKeyUsage, GetKeyUsageRequest, GetKeyUsageResponse, KeyServiceServer } from '../../gen/apikeys/v1/key_service';
import type { KeyUsageReader } from '../../domain/keyUsage';
import type { DailyUsage } from '../../domain/model';
import type { CallContext } from '../../domain/principal';
import { VERIFY_CODE } from './verifyService';

/** keyServiceHandlers' adapter: runs a (request, context) function as a unary handler in the call's scope. */
export type Handle = <Req, Res>(fn: (req: Req, ctx: CallContext) => Promise<Res>) => handleUnaryCall<Req, Res>;

function toProtoDay(d: DailyUsage): DailyKeyUsage {
  return {
    day: d.day,
    total: d.counts.reduce((sum, c) => sum + c.count, 0),
    counts: d.counts.map((c) => ({ code: VERIFY_CODE[c.code], count: c.count })),
  };
}

export function keyUsageHandlers(usage: KeyUsageReader, handle: Handle): Pick<KeyServiceServer, 'getKeyUsage'> {
  return {
    getKeyUsage: handle<GetKeyUsageRequest, GetKeyUsageResponse>(async (req, ctx) => {
      const days = await usage.get(ctx, { keyId: req.keyId, startTime: req.startTime, endTime: req.endTime });
      return { days: days.map(toProtoDay) };
    }),
  };
}
