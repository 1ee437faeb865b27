import type { EventEmitter } from 'node:events';

/**
 * Resolves on `event`; rejects with what `fail` makes of an `error` event, a `close` event
 * (when `fail.close` is given) or the signal's abort. Listeners are removed either way.
 */
export function untilEvent(
  emitter: EventEmitter,
  event: string,
  signal: AbortSignal,
  fail: { error: (err: Error) => unknown; close?: () => unknown; abort: () => unknown },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      signal.removeEventListener('abort', onAbort);
      emitter.off(event, onEvent);
      emitter.off('error', onError);
      emitter.off('close', onClose);
    };
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(fail.error(err));
    };
    const onClose = () => {
      cleanup();
      reject(fail.close?.());
    };
    const onAbort = () => {
      cleanup();
      reject(fail.abort());
    };
    if (signal.aborted) return onAbort();
    emitter.once(event, onEvent);
    emitter.once('error', onError);
    if (fail.close) emitter.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
