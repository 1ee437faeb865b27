// Just enough SOCKS5 (RFC 1928: no authentication, CONNECT to an IPv4 address) to send one
// HTTP/1.0 request through a ztunnel's SOCKS5 listener, the way `curl --socks5` does.
import { connect, type Socket } from 'node:net';

function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tryRead = () => {
      const chunk = socket.read(n) as Buffer | null;
      if (chunk) {
        cleanup();
        resolve(chunk);
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('connection closed by the proxy'));
    };
    const cleanup = () => {
      socket.off('readable', tryRead);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
    };
    socket.on('readable', tryRead);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    tryRead();
  });
}

/** `GET path` to `target` through the SOCKS5 proxy; resolves with status line and body. */
export async function httpGetViaSocks(
  proxy: { host: string; port: number },
  target: { ip: string; port: number },
  path: string,
): Promise<{ status: string; body: string }> {
  const socket = connect(proxy.port, proxy.host);
  try {
    socket.write(Buffer.from([5, 1, 0])); // version 5, one method: no authentication
    const [, method] = await readBytes(socket, 2);
    if (method !== 0) throw new Error(`SOCKS5 method ${method} refused`);
    const port = Buffer.alloc(2);
    port.writeUInt16BE(target.port);
    socket.write(
      Buffer.concat([Buffer.from([5, 1, 0, 1, ...target.ip.split('.').map(Number)]), port]),
    );
    const reply = await readBytes(socket, 10);
    if (reply[1] !== 0) throw new Error(`SOCKS5 reply ${reply[1]}`);
    socket.end(`GET ${path} HTTP/1.0\r\nHost: ${target.ip}\r\n\r\n`);
    let response = '';
    for await (const chunk of socket) response += chunk;
    if (response === '') throw new Error('connection closed by the proxy');
    const [head = '', body = ''] = response.split('\r\n\r\n');
    return { status: head.split('\r\n')[0] ?? '', body };
  } finally {
    socket.destroy();
  }
}
