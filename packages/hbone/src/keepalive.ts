import type { Http2Session } from 'node:http2';
import { HboneError } from './errors.js';

/**
 * HTTP/2 PING keepalive as ztunnel: a PING every `intervalMs`; when one stays unanswered for
 * `timeoutMs` the connection is declared dead. Timers are unref'd and stop with the session.
 */
export function startKeepalive(
  session: Http2Session,
  intervalMs: number,
  timeoutMs: number,
  onDead: (err: HboneError) => void,
): void {
  if (intervalMs <= 0) return;
  let deadline: NodeJS.Timeout | undefined;
  const stop = () => {
    clearInterval(tick);
    if (deadline) clearTimeout(deadline);
  };
  const tick = setInterval(() => {
    if (session.destroyed || session.closed) return stop();
    if (deadline) return; // one PING in flight at a time
    deadline = setTimeout(() => {
      stop();
      onDead(
        new HboneError(
          'ERR_HBONE_PING_TIMEOUT',
          `HTTP/2 PING unanswered for ${timeoutMs} ms; dropping the connection`,
        ),
      );
    }, timeoutMs);
    deadline.unref();
    session.ping((err) => {
      if (err) return;
      if (deadline) clearTimeout(deadline);
      deadline = undefined;
    });
  }, intervalMs);
  tick.unref();
  session.once('close', stop);
}
