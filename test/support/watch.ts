// A WatchKeyChanges stream as tests read it: every message kept, a wait for the next one that
// matches, and how the stream ended.
import { credentials, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { VerifyServiceClient, type WatchKeyChangesResponse } from '../../src/gen/apikeys/v1/verify_service';

export interface Watch {
  readonly messages: WatchKeyChangesResponse[];
  /** The first message (received so far or later) that matches; fails the test after `timeoutMs`. */
  next(match: (m: WatchKeyChangesResponse) => boolean, timeoutMs?: number): Promise<WatchKeyChangesResponse>;
  /** Resolves when the stream is over: with its error, or `ok` when the server ended it cleanly. */
  readonly ended: Promise<{ ok: true } | { ok: false; error: ServiceError }>;
  cancel(): void;
}

export function watch(address: string, metadata: Metadata, position = ''): Watch {
  const client = new VerifyServiceClient(address, credentials.createInsecure());
  const stream = client.watchKeyChanges({ position }, metadata);
  const messages: WatchKeyChangesResponse[] = [];
  const waiters = new Set<() => void>();
  stream.on('data', (m: WatchKeyChangesResponse) => {
    messages.push(m);
    for (const w of waiters) w();
  });
  const ended = new Promise<{ ok: true } | { ok: false; error: ServiceError }>((resolve) => {
    stream.on('error', (error: ServiceError) => resolve({ ok: false, error }));
    stream.on('end', () => resolve({ ok: true }));
  }).finally(() => client.close());
  return {
    messages,
    ended,
    cancel: () => stream.cancel(),
    next(match, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching WatchKeyChanges message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

export const isHeartbeat = (m: WatchKeyChangesResponse) => m.event?.$case === 'heartbeat';
export const changeOf = (m: WatchKeyChangesResponse) => (m.event?.$case === 'keyChange' ? m.event.value : undefined);
export const resetOf = (m: WatchKeyChangesResponse) => (m.event?.$case === 'reset' ? m.event.value : undefined);
