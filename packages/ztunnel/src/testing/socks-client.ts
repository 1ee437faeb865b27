import { connect, type Socket } from 'node:net';

/**
 * Minimal SOCKS5 CONNECT client (no auth) for the demo; resolves with the connected socket,
 * paused so no early byte is lost: attach listeners, then `resume()`.
 */
export function socksConnect(
  proxy: { host: string; port: number },
  target: { host: string; port: number },
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(proxy.port, proxy.host);
    let buf = Buffer.alloc(0);
    let stage = 0;
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('error', fail);
    s.once('connect', () => s.write(Buffer.from([5, 1, 0])));
    s.on('data', function onData(chunk: Buffer) {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        stage = 1;
        const host = Buffer.from(target.host);
        const port = Buffer.alloc(2);
        port.writeUInt16BE(target.port);
        const ip = target.host.split('.').map(Number);
        s.write(
          ip.length === 4 && ip.every((n) => n >= 0 && n <= 255)
            ? Buffer.concat([Buffer.from([5, 1, 0, 1, ...ip]), port])
            : Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), host, port]),
        );
      }
      if (stage === 1 && buf.length >= 10) {
        s.off('data', onData);
        s.off('error', fail);
        if (buf[1] !== 0) {
          fail(new Error(`SOCKS5 reply ${buf[1]}`));
          return;
        }
        // Hold back what the server already sent until the caller attaches its listeners.
        s.pause();
        if (buf.length > 10) s.unshift(buf.subarray(10));
        resolve(s);
      }
    });
    s.once('close', () => fail(new Error('connection closed by the proxy')));
  });
}

/** `GET path` over a SOCKS5 tunnel; resolves with the body, rejects when the mesh refuses. */
export async function httpGet(
  proxy: { host: string; port: number },
  target: { host: string; port: number },
  path: string,
): Promise<string> {
  const s = await socksConnect(proxy, target);
  s.removeAllListeners('close');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.resume();
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const i = text.indexOf('\r\n\r\n');
      if (!text.startsWith('HTTP/1.1 200'))
        reject(new Error(text ? text.split('\r\n')[0] : 'connection closed without a response'));
      else resolve(text.slice(i + 4));
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`);
  });
}

/** Opens a plain TCP connection and reports whether the server answered an HTTP request. */
export function plainGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () =>
      s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      if (text.startsWith('HTTP/1.1 200')) resolve(text);
      else reject(new Error('connection closed by ztunnel without a response'));
    });
  });
}
