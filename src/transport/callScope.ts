import { AsyncLocalStorage } from 'node:async_hooks';
import type { CallContext } from '../domain/principal';

/**
 * The KeyService call whose work is running now, so that storage can bound each query by the
 * call's deadline and abort it when the client cancels, without every port taking the context.
 * app.ts hands storage `currentCall`; the KeyService handlers run inside `inCallScope`.
 * VerifyKey does not: its storage reads are shared by concurrent callers (one read per key).
 *
 * Enabled only while KeyService calls are in flight: once an AsyncLocalStorage is enabled, Node
 * runs a hook for every promise the process makes (VerifyKey's and forward auth's included), so
 * it is disabled again when the last call ends. A KeyService handler awaits all of its storage
 * work, so nothing that needs the scope outlives the count.
 */
const scope = new AsyncLocalStorage<CallContext>();
let callsInScope = 0;

function leave(): void {
  if (--callsInScope === 0) scope.disable();
}

export function inCallScope<T>(ctx: CallContext, work: () => Promise<T>): Promise<T> {
  callsInScope++;
  let done: Promise<T>;
  try {
    done = scope.run(ctx, work);
  } catch (err) {
    leave();
    throw err;
  }
  return done.finally(leave);
}

export function currentCall(): CallContext | undefined {
  return scope.getStore();
}
