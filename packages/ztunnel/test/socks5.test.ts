import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  readSocks5Request,
  SOCKS5_REPLY,
  type Socks5Request,
  writeSocks5Reply,
} from '../src/proxy/socks5.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function exchange(
  bytes: Buffer[],
): Promise<{ result: Socks5Request | Error; reply: Buffer; rest: Buffer }> {
  let settle!: (v: Socks5Request | Error) => void;
  const result = new Promise<Socks5Request | Error>((r) => (settle = r));
  const rest: Buffer[] = [];
  const server = createServer((s: Socket) => {
    readSocks5Request(s).then(
      (req) => {
        writeSocks5Reply(s, SOCKS5_REPLY.succeeded);
        s.on('data', (d) => rest.push(d));
        s.resume();
        s.on('end', () => s.end());
        settle(req);
      },
      (err: Error) => settle(err),
    );
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = connect((server.address() as { port: number }).port, '127.0.0.1');
  const reply: Buffer[] = [];
  const closed = once(c, 'close');
  c.on('error', () => {});
  c.on('data', (d) => reply.push(d));
  await once(c, 'connect');
  for (const b of bytes) {
    c.write(b);
    await new Promise((r) => setTimeout(r, 5));
  }
  const r = await result;
  c.end();
  await closed;
  return { result: r, reply: Buffer.concat(reply), rest: Buffer.concat(rest) };
}

describe('SOCKS5 handshake', () => {
  it('accepts a no-auth CONNECT to an IPv4 address, byte by byte, and keeps early data', async () => {
    const all = Buffer.from([
      5,
      1,
      0,
      5,
      1,
      0,
      1,
      10,
      0,
      0,
      7,
      0x1f,
      0x90,
      ...Buffer.from('hello'),
    ]);
    const { result, reply, rest } = await exchange([...all].map((b) => Buffer.from([b])));
    expect(result).toEqual({ kind: 'ip', host: '10.0.0.7', port: 8080 });
    expect([...reply]).toEqual([5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(rest.toString()).toBe('hello');
  });

  it('reads IPv6 and domain-name targets', async () => {
    const v6 = Buffer.from([5, 1, 0, 5, 1, 0, 4, 0xfd, 0, ...Array(13).fill(0), 1, 0, 80]);
    expect((await exchange([v6])).result).toEqual({ kind: 'ip', host: 'fd00::1', port: 80 });
    const name = Buffer.from('httpbin.default.svc.cluster.local');
    const dom = Buffer.concat([
      Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]),
      name,
      Buffer.from([0, 80]),
    ]);
    expect((await exchange([dom])).result).toEqual({
      kind: 'domain',
      host: name.toString(),
      port: 80,
    });
  });

  it('refuses username/password-only clients, BIND, and non-SOCKS5 bytes with typed errors', async () => {
    const auth = await exchange([Buffer.from([5, 1, 2])]);
    expect((auth.result as Error).message).toMatch(/no acceptable authentication/);
    expect([...auth.reply]).toEqual([5, 0xff]);
    const bind = await exchange([Buffer.from([5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80])]);
    expect((bind.result as unknown as { code: string }).code).toBe('ERR_ZTUNNEL_SOCKS5_PROTOCOL');
    expect(bind.reply[3]).toBe(SOCKS5_REPLY.commandNotSupported);
    const http = await exchange([Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
    expect((http.result as Error).message).toMatch(/not a SOCKS5 client/);
  });
});
