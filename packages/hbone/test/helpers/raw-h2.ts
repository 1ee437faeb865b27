import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { WorkloadCertificate } from '@mesh/spiffe';

/**
 * A hand-rolled HTTP/2 client that writes frames byte by byte (HPACK literals without
 * Huffman or indexing), so tests can send what well-behaved libraries refuse to: extended
 * CONNECT without the setting, floods, oversized header blocks, too many streams.
 */
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function int(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** HPACK "literal header field without indexing, new name". */
export function hpack(headers: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0]), int(n.length, 7), n, int(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

export class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  #buf: Buffer = Buffer.alloc(0);

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.#parse(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static connect(port: number, cert: WorkloadCertificate | undefined): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ALPNProtocols: ['h2'],
        ca: [...(cert?.roots ?? [])],
        rejectUnauthorized: false,
        ...(cert
          ? { key: cert.privateKey, cert: [cert.leaf, ...cert.intermediates].join('') }
          : {}),
      });
      socket.once('secureConnect', () => {
        const raw = new RawH2(socket);
        socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
        socket.write(frame(FRAME.SETTINGS, 0, 0));
        resolve(raw);
      });
      socket.once('error', reject);
    });
  }

  write(buf: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(buf);
  }

  headers(streamId: number, headers: [string, string][], endStream = false): void {
    this.write(frame(FRAME.HEADERS, 0x4 | (endStream ? 0x1 : 0), streamId, hpack(headers)));
  }

  count(type: number, pred: (f: Frame) => boolean = () => true): number {
    return this.frames.filter((f) => f.type === type && pred(f)).length;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) return;
      const f: Frame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buf.subarray(9, 9 + len),
      };
      this.#buf = this.#buf.subarray(9 + len);
      // Ack SETTINGS like a conforming peer (floods are sent explicitly).
      if (f.type === FRAME.SETTINGS && !(f.flags & 1)) this.write(frame(FRAME.SETTINGS, 1, 0));
      this.frames.push(f);
    }
  }
}

/** Two cross-connected in-memory duplexes (Node 20 has no `stream.duplexPair`). */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      allowHalfOpen: true,
      read() {},
      write(chunk, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

export interface FakeH2Connection {
  servername: unknown;
  alpn: unknown;
  frames: Frame[];
}

/**
 * A hand-rolled HTTP/2-over-TLS server that records the client's frames, acknowledges
 * SETTINGS, optionally answers every HEADERS with `:status: 200`, and never answers PINGs.
 */
export async function startFakeH2Server(
  cert: WorkloadCertificate,
  options: { answerConnect?: boolean } = {},
): Promise<{ port: number; connections: FakeH2Connection[]; close(): Promise<void> }> {
  const sockets = new Set<TLSSocket>();
  const connections: FakeH2Connection[] = [];
  const server = createTlsServer(
    {
      key: cert.privateKey,
      cert: [cert.leaf, ...cert.intermediates].join(''),
      ca: [...cert.roots],
      requestCert: true,
      ALPNProtocols: ['h2'],
    },
    (s) => {
      sockets.add(s);
      s.on('error', () => {});
      const conn: FakeH2Connection = { servername: s.servername, alpn: s.alpnProtocol, frames: [] };
      connections.push(conn);
      let buf: Buffer = Buffer.alloc(0);
      let preface = false;
      s.write(frame(FRAME.SETTINGS, 0, 0));
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (!preface) {
          if (buf.length < 24) return;
          buf = buf.subarray(24);
          preface = true;
        }
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3);
          const f: Frame = {
            type: buf[3]!,
            flags: buf[4]!,
            streamId: buf.readUInt32BE(5) & 0x7fffffff,
            payload: Buffer.from(buf.subarray(9, 9 + len)),
          };
          buf = buf.subarray(9 + len);
          conn.frames.push(f);
          if (f.type === FRAME.SETTINGS && !(f.flags & 1)) s.write(frame(FRAME.SETTINGS, 1, 0));
          // 0x88 = HPACK static table index 8, ":status: 200".
          if (f.type === FRAME.HEADERS && options.answerConnect) {
            s.write(frame(FRAME.HEADERS, 0x4, f.streamId, Buffer.from([0x88])));
          }
        }
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
