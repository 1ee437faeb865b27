import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectSocket } from '@mesh/redirect';
import type { ZtunnelConfig } from '../config/settings.js';

/**
 * A plain TCP connection from the proxy: through @mesh/redirect's native socket when a packet
 * mark is configured (SO_MARK must be set before connect, so capture rules skip it), else
 * `net.connect`. Resolves once connected; rejects on error, timeout or abort.
 */
export function dialTcp(
  config: ZtunnelConfig,
  target: { host: string; port: number },
  options: {
    signal?: AbortSignal;
    timeoutMs?: number;
    localAddress?: string;
    transparent?: boolean;
  } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket =
        (config.packetMark !== undefined || options.transparent) && isIP(target.host)
          ? connectSocket({
              host: target.host,
              port: target.port,
              ...(config.packetMark !== undefined ? { mark: config.packetMark } : {}),
              ...(options.transparent ? { transparent: true, freebind: true } : {}),
              noDelay: true,
              keepAlive: true,
              ...(options.localAddress ? { localAddress: options.localAddress } : {}),
            })
          : netConnect({
              host: target.host,
              port: target.port,
              noDelay: true,
              keepAlive: true,
              ...(options.localAddress ? { localAddress: options.localAddress } : {}),
            });
      // A half-closed client must still get the reply: keep our side writable after FIN.
      socket.allowHalfOpen = true;
    } catch (err) {
      reject(err);
      return;
    }
    const timer = setTimeout(
      () =>
        fail(
          Object.assign(new Error(`connect to ${target.host}:${target.port} timed out`), {
            code: 'ETIMEDOUT',
          }),
        ),
      options.timeoutMs ?? 10_000,
    );
    const onAbort = () => fail(options.signal!.reason as Error);
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', fail);
      options.signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', fail);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** Half-duplex-safe end of a client socket we could not serve. */
export function reject(socket: Duplex): void {
  if (!socket.destroyed) socket.destroy();
}
