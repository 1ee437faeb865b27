import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectSocket, probeCapabilities } from '@mesh/redirect';
import type { ZtunnelConfig } from '../config/settings.js';
import { ZtunnelError } from '../errors.js';

/** ztunnel's in-pod mark: the rules connmark only marked connections for the reply route. */
const INPOD_MARK = 0x539;

/** Address families whose inbound dials come from the client's IP. */
export interface OrigSrc {
  ipv4: boolean;
  ipv6: boolean;
}

/**
 * Whether inbound dials to the app come from the client's IP (spec §8.3): `ENABLE_ORIG_SRC`
 * true/false forces it, unset uses it when this process may set IP_TRANSPARENT, IP_FREEBIND and
 * SO_MARK. Throws `ERR_ZTUNNEL_ORIG_SRC_UNAVAILABLE` when forced on but not possible.
 */
export function resolveOrigSrc(config: ZtunnelConfig): OrigSrc {
  if (config.enableOrigSrc === false) return { ipv4: false, ipv6: false };
  const caps = probeCapabilities();
  const ok = caps.supported && caps.freebind && caps.mark;
  if (ok && caps.transparent) return { ipv4: true, ipv6: caps.transparent6 };
  if (config.enableOrigSrc === true) {
    const why = caps.missing.join('; ');
    throw new ZtunnelError(
      'ERR_ZTUNNEL_ORIG_SRC_UNAVAILABLE',
      `ENABLE_ORIG_SRC=true, but this process cannot connect from the client's address: ${why}`,
    );
  }
  return { ipv4: false, ipv6: false };
}

/** The client IP to dial the app from, when source preservation applies to this pair. */
export function spoofSource(
  origSrc: OrigSrc,
  clientIp: string | undefined,
  appIp: string,
): string | undefined {
  if (!clientIp) return undefined;
  const family = isIP(clientIp);
  if (family === 0 || family !== isIP(appIp)) return undefined;
  return (family === 4 ? origSrc.ipv4 : origSrc.ipv6) ? clientIp : undefined;
}

/**
 * A plain TCP connection from the proxy: through @mesh/redirect's native socket when a packet
 * mark is configured (SO_MARK must be set before connect, so capture rules skip it) or for a
 * transparent dial from the client's IP, else `net.connect`. Resolves once connected; rejects
 * on error, timeout or abort.
 */
export function dialTcp(
  config: ZtunnelConfig,
  target: { host: string; port: number },
  options: {
    signal?: AbortSignal;
    timeoutMs?: number;
    localAddress?: string;
    /** IP_TRANSPARENT + IP_FREEBIND, so `localAddress` may be foreign (the client's). */
    transparent?: boolean;
  } = {},
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      // Transparent dials always carry a mark: the in-pod rules route the app's replies back
      // to us only for connections whose packets were marked (connmark 0x111, table 100).
      const mark = config.packetMark ?? (options.transparent ? INPOD_MARK : undefined);
      socket =
        (mark !== undefined || options.transparent) && isIP(target.host)
          ? connectSocket({
              host: target.host,
              port: target.port,
              ...(mark !== undefined ? { mark } : {}),
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
