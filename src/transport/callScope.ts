import { AsyncLocalStorage } from 'node:async_hooks';
import type { CallContext } from '../domain/principal';

/**
 * The KeyService call whose work is running now, so that storage can bound each query by the
 * call's deadline and abort it when the client cancels, without every port taking the context.
 * app.ts hands storage `currentCall`; the KeyService handlers run inside `inCallScope`.
 * VerifyKey does not: its storage reads are shared by concurrent callers (one read per key).
 */
const scope = new AsyncLocalStorage<CallContext>();

export function inCallScope<T>(ctx: CallContext, work: () => Promise<T>): Promise<T> {
  return scope.run(ctx, work);
}

export function currentCall(): CallContext | undefined {
  return scope.getStore();
}
