/**
 * Port helpers for tools that cannot bind port 0 themselves (stunnel4, iperf3) and readiness
 * probes for servers started in other processes.
 */

import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A port that was free on `host` a moment ago: the kernel picks it (bind to port 0), then the
 * listener closes. Another process may still take it before the caller binds, so callers that
 * hand it to an external tool must retry on "address in use" (as {@link startStunnelPair} does).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One TCP connect attempt; true when something accepted it. */
export async function canConnect(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Poll until `host:port` accepts a TCP connection. Rejects with the signal's reason, or with
 * an error naming the address after `timeoutMs`.
 */
export async function waitForPort(
  host: string,
  port: number,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    options.signal?.throwIfAborted();
    if (await canConnect(host, port, 500)) return;
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${host}:${port}`);
    await sleep(delay, undefined, { signal: options.signal });
  }
}
