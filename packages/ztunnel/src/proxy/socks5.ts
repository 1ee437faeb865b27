import type { Socket } from 'node:net';
import { ZtunnelError } from '../errors.js';

export interface Socks5Request {
  /** `ip` for IPv4/IPv6 literals, `domain` for a host name to resolve. */
  kind: 'ip' | 'domain';
  host: string;
  port: number;
}

/** SOCKS5 reply codes (RFC 1928 §6). */
export const SOCKS5_REPLY = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

const fail = (message: string) => new ZtunnelError('ERR_ZTUNNEL_SOCKS5_PROTOCOL', message);

/**
 * Runs the server side of a SOCKS5 handshake up to the CONNECT request: no-auth only, CONNECT
 * only, IPv4 / IPv6 / domain addresses. Bytes sent after the request stay in the socket for the
 * tunnel. Rejects with `ERR_ZTUNNEL_SOCKS5_PROTOCOL` (after answering the client) on anything else.
 */
export function readSocks5Request(
  socket: Socket,
  options: { timeoutMs?: number } = {},
): Promise<Socks5Request> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'request' = 'greeting';
    const timer = setTimeout(
      () => finish(fail('SOCKS5 handshake timed out')),
      options.timeoutMs ?? 10_000,
    );
    const finish = (err: Error | null, req?: Socks5Request, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      if (err) {
        reject(err);
        return;
      }
      socket.pause();
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(req!);
    };
    const refuse = (reply: number, message: string) => {
      socket.end(Buffer.from([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]));
      finish(fail(message));
    };
    const onEnd = () => finish(fail('client closed the connection during the SOCKS5 handshake'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 'greeting') {
        if (buf.length < 2) return;
        if (buf[0] !== 5) {
          socket.end();
          finish(fail(`not a SOCKS5 client (version byte ${buf[0]})`));
          return;
        }
        const n = buf[1]!;
        if (buf.length < 2 + n) return;
        const methods = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (!methods.includes(0)) {
          socket.end(Buffer.from([5, 0xff]));
          finish(
            fail('client offers no acceptable authentication method (only no-auth is supported)'),
          );
          return;
        }
        socket.write(Buffer.from([5, 0]));
        stage = 'request';
      }
      if (buf.length < 5) return;
      if (buf[0] !== 5)
        return refuse(SOCKS5_REPLY.generalFailure, `bad SOCKS5 request version ${buf[0]}`);
      if (buf[1] !== 1)
        return refuse(
          SOCKS5_REPLY.commandNotSupported,
          `SOCKS5 command ${buf[1]} is not supported (only CONNECT)`,
        );
      const atyp = buf[3];
      let end: number;
      let host: string;
      let kind: Socks5Request['kind'] = 'ip';
      if (atyp === 1) {
        end = 4 + 4;
        if (buf.length < end + 2) return;
        host = [...buf.subarray(4, end)].join('.');
      } else if (atyp === 4) {
        end = 4 + 16;
        if (buf.length < end + 2) return;
        const groups: string[] = [];
        for (let i = 4; i < end; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
        host = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
      } else if (atyp === 3) {
        const len = buf[4]!;
        end = 5 + len;
        if (buf.length < end + 2) return;
        host = buf.subarray(5, end).toString('latin1');
        kind = 'domain';
        if (len === 0 || !/^[a-zA-Z0-9._-]+$/.test(host)) {
          return refuse(SOCKS5_REPLY.hostUnreachable, `SOCKS5 domain name "${host}" is not valid`);
        }
      } else {
        return refuse(
          SOCKS5_REPLY.addressTypeNotSupported,
          `SOCKS5 address type ${atyp} is not supported`,
        );
      }
      const port = buf.readUInt16BE(end);
      finish(null, { kind, host, port }, buf.subarray(end + 2));
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
  });
}

/** Sends the final SOCKS5 reply (bound address 0.0.0.0:0, as the address is meaningless here). */
export function writeSocks5Reply(socket: Socket, reply: number): void {
  const msg = Buffer.from([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]);
  if (reply === SOCKS5_REPLY.succeeded) socket.write(msg);
  else socket.end(msg);
}
