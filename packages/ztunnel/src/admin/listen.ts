import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { type BindAddress, formatBindAddress } from '../config/values.js';
import { ZtunnelError } from '../errors.js';

/** Binds `server` to `address`, turning bind failures into `ERR_ZTUNNEL_LISTEN_FAILED`. */
export function listen(
  server: Server | HttpServer,
  address: BindAddress,
  what: string,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const hint =
        err.code === 'EADDRINUSE'
          ? ' (address already in use: is another ztunnel running? set a different address)'
          : err.code === 'EACCES'
            ? ' (permission denied: ports below 1024 need CAP_NET_BIND_SERVICE)'
            : err.code === 'EADDRNOTAVAIL'
              ? ' (no local interface has this address)'
              : '';
      reject(
        new ZtunnelError(
          'ERR_ZTUNNEL_LISTEN_FAILED',
          `${what} cannot listen on ${formatBindAddress(address)}: ${err.code ?? err.message}${hint}`,
          { cause: err },
        ),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({
      host: address.host === '' ? undefined : address.host,
      port: address.port,
      ipv6Only: false,
    });
  });
}

/** `host:port` of a bound server, brackets for IPv6. */
export function boundAddress(info: AddressInfo): string {
  return formatBindAddress({ host: info.address, port: info.port });
}
