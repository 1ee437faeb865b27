/**
 * Direct TCP traffic: sink, echo and the clients that drive them (bulk, request/response,
 * new connections, idle connections). Clients reach the server directly, or through a SOCKS5
 * proxy (how an unprivileged ztunnel is entered), from a chosen source address.
 *
 * These functions run in whatever process imports them; {@link Agent} runs them in a child
 * process so the load generator does not share an event loop with the code under test.
 */

import { once } from 'node:events';
import { connect, createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { type LatencySummary, summarize } from './stats.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** How a client reaches the server. Plain data, so it crosses process boundaries. */
export interface DialSpec {
  /** The server as the application names it. */
  target: Endpoint;
  /** Enter through this SOCKS5 proxy (no auth, CONNECT) instead of connecting directly. */
  socks5?: Endpoint;
  /** Source address to bind (e.g. the client workload's IP on 127.0.0.0/8). */
  localAddress?: string;
}

export interface RunningServer {
  host: string;
  port: number;
  /** Stop accepting, destroy open connections, resolve when closed. */
  close(): Promise<void>;
}

const ABORTED = () => new Error('aborted');

/** Read exactly `n` bytes before any 'data' listener is attached (handshakes, counts). */
export async function readExact(socket: Socket, n: number, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const chunk = socket.read(n - have) as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      have += chunk.length;
      continue;
    }
    if (socket.readableEnded || socket.destroyed) {
      // A final short read: take whatever is left before reporting the truncation.
      const rest = socket.read() as Buffer | null;
      if (rest) {
        chunks.push(rest);
        have += rest.length;
        continue;
      }
      throw new Error(`connection closed after ${have} of ${n} expected bytes`);
    }
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        socket.off('readable', done);
        socket.off('end', done);
        socket.off('close', done);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      socket.on('readable', done);
      socket.once('end', done);
      socket.once('close', done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n);
}

function socksAddress(host: string): Buffer {
  if (isIPv4(host)) return Buffer.from([1, ...host.split('.').map(Number)]);
  if (isIPv6(host)) {
    const [head = '', tail] = host.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const words = [
      ...h,
      ...Array<string>(tail === undefined ? 0 : 8 - h.length - t.length).fill('0'),
      ...t,
    ];
    const out = Buffer.alloc(17);
    out[0] = 4;
    for (const [i, w] of words.entries()) out.writeUInt16BE(Number.parseInt(w, 16), 1 + 2 * i);
    return out;
  }
  const name = Buffer.from(host);
  return Buffer.concat([Buffer.from([3, name.length]), name]);
}

/**
 * SOCKS5 CONNECT (RFC 1928, no authentication) on an already connected socket. Resolves once
 * the proxy reports success; rejects with the reply code otherwise.
 */
export async function socks5Connect(
  socket: Socket,
  target: Endpoint,
  signal?: AbortSignal,
): Promise<void> {
  socket.write(Buffer.from([5, 1, 0]));
  const hello = await readExact(socket, 2, signal);
  if (hello[0] !== 5 || hello[1] !== 0) {
    throw new Error(`SOCKS5 proxy refused no-auth method (reply ${hello.toString('hex')})`);
  }
  const port = Buffer.alloc(2);
  port.writeUInt16BE(target.port);
  socket.write(Buffer.concat([Buffer.from([5, 1, 0]), socksAddress(target.host), port]));
  const head = await readExact(socket, 4, signal);
  if (head[1] !== 0)
    throw new Error(`SOCKS5 CONNECT to ${target.host}:${target.port} failed: reply ${head[1]}`);
  const rest = head[3] === 1 ? 4 : head[3] === 4 ? 16 : (await readExact(socket, 1, signal))[0]!;
  await readExact(socket, rest + 2, signal);
}

/** Open a TCP connection as `spec` says (directly or via SOCKS5), with TCP_NODELAY. */
export async function dial(spec: DialSpec, signal?: AbortSignal): Promise<Socket> {
  const first = spec.socks5 ?? spec.target;
  const socket = connect({
    host: first.host,
    port: first.port,
    localAddress: spec.localAddress,
    noDelay: true,
  });
  try {
    await once(socket, 'connect', { signal });
    if (spec.socks5) await socks5Connect(socket, spec.target, signal);
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

async function listen(server: Server, host: string, port: number): Promise<RunningServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen({ host, port });
  await once(server, 'listening');
  const address = server.address();
  return {
    host,
    port: typeof address === 'object' && address ? address.port : port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/**
 * A sink: counts the bytes of each connection and, when the client half-closes, answers with
 * the count as an 8-byte big-endian integer and closes. A client that reads that count knows
 * every byte arrived, which is how {@link runBulk} proves nothing was lost on the way.
 */
export async function startSink(
  options: { host?: string; port?: number } = {},
): Promise<RunningServer> {
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      count += chunk.length;
    });
    socket.on('end', () => {
      const reply = Buffer.alloc(8);
      reply.writeBigUInt64BE(BigInt(count));
      socket.end(reply);
    });
    socket.on('error', () => socket.destroy());
  });
  return await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
}

/** An echo server: writes back whatever arrives and closes when the client does. */
export async function startEcho(
  options: { host?: string; port?: number } = {},
): Promise<RunningServer> {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  return await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
}

export interface BulkOptions {
  dial: DialSpec;
  /** Parallel connections (default 1). */
  connections?: number;
  /** How long each connection sends (default 5000 ms). */
  durationMs?: number;
  /** Size of each write (default 256 KiB, like ztunnel's largest copy buffer). */
  chunkBytes?: number;
}

export interface BulkResult {
  connections: number;
  /** Bytes confirmed by the sink (equal to the bytes sent, or the run fails). */
  bytes: number;
  /** From the first write until the sink confirmed the last byte. */
  seconds: number;
  /** Payload gigabits (10^9 bits) per second, as iperf3 reports. */
  gbps: number;
}

/**
 * Bulk throughput to a {@link startSink}: N connections write for `durationMs`, half-close, and
 * wait for the sink's byte count. Fails if the sink counted a different number of bytes.
 */
export async function runBulk(options: BulkOptions, signal?: AbortSignal): Promise<BulkResult> {
  const n = options.connections ?? 1;
  const durationMs = options.durationMs ?? 5000;
  const chunk = Buffer.alloc(options.chunkBytes ?? 256 * 1024, 0x61);
  const sockets = await Promise.all(Array.from({ length: n }, () => dial(options.dial, signal)));
  const start = performance.now();
  const deadline = start + durationMs;
  try {
    const sent = await Promise.all(
      sockets.map(async (socket) => {
        let written = 0;
        while (performance.now() < deadline) {
          if (signal?.aborted) throw signal.reason ?? ABORTED();
          written += chunk.length;
          if (!socket.write(chunk)) await once(socket, 'drain', { signal });
        }
        socket.end();
        const count = Number((await readExact(socket, 8, signal)).readBigUInt64BE());
        if (count !== written)
          throw new Error(`sink counted ${count} bytes, client sent ${written}`);
        return written;
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const bytes = sent.reduce((a, b) => a + b, 0);
    return { connections: n, bytes, seconds, gbps: (bytes * 8) / seconds / 1e9 };
  } finally {
    for (const s of sockets) s.destroy();
  }
}

export interface LatencyOptions {
  dial: DialSpec;
  /** Connections carrying requests in parallel (default 1). */
  connections?: number;
  /** Request and response size (default 1024 bytes). */
  requestBytes?: number;
  /** Requests per second across all connections; omit to saturate (closed loop). */
  rate?: number;
  /** Measurement length (default 5000 ms). */
  durationMs?: number;
  /** Round trips per connection before measuring (default 20). */
  warmup?: number;
}

export interface LatencyResult {
  requests: number;
  seconds: number;
  /** Completed requests per second. */
  rps: number;
  /** Round-trip latency in milliseconds. */
  latencyMs: LatencySummary;
}

/**
 * 1 KiB request/response against a {@link startEcho}. With `rate`, requests follow a fixed
 * schedule and a request delayed by a slow predecessor is timed from when it was due
 * (coordinated-omission correction, as wrk2/fortio do); without `rate`, each connection sends
 * the next request as soon as the previous answer arrived (saturation).
 */
export async function runLatency(
  options: LatencyOptions,
  signal?: AbortSignal,
): Promise<LatencyResult> {
  const n = options.connections ?? 1;
  const size = options.requestBytes ?? 1024;
  const durationMs = options.durationMs ?? 5000;
  const request = Buffer.alloc(size, 0x62);
  const sockets = await Promise.all(Array.from({ length: n }, () => dial(options.dial, signal)));
  try {
    const roundTrip = makeRoundTripper(sockets, size, signal);
    for (let w = 0; w < (options.warmup ?? 20); w++) {
      await Promise.all(sockets.map((_, i) => roundTrip(i, request)));
    }
    const samples: number[] = [];
    const start = performance.now();
    const end = start + durationMs;
    const intervalMs = options.rate ? (1000 * n) / options.rate : 0;
    await Promise.all(
      sockets.map(async (_, i) => {
        // Stagger connections so a fixed rate is spread evenly, not sent in bursts of n.
        let due = start + (intervalMs * i) / n;
        let previousDone = start;
        while (due < end) {
          if (signal?.aborted) throw signal.reason ?? ABORTED();
          const now = performance.now();
          if (intervalMs && now < due) await new Promise((r) => setTimeout(r, due - now));
          // Late because of our own timer: time from the real send. Late because the previous
          // answer was slow: time from when the request was due.
          const sentAt = intervalMs && previousDone > due ? due : performance.now();
          await roundTrip(i, request);
          previousDone = performance.now();
          samples.push(previousDone - sentAt);
          due = intervalMs ? due + intervalMs : previousDone;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    return {
      requests: samples.length,
      seconds,
      rps: samples.length / seconds,
      latencyMs: summarize(samples),
    };
  } finally {
    for (const s of sockets) s.destroy();
  }
}

/** Per-socket "write request, resolve when as many bytes came back" helper. */
function makeRoundTripper(sockets: Socket[], size: number, signal?: AbortSignal) {
  const waiting: Array<
    { remaining: number; resolve: () => void; reject: (e: Error) => void } | undefined
  > = [];
  sockets.forEach((socket, i) => {
    const fail = (err: Error) => {
      const w = waiting[i];
      waiting[i] = undefined;
      w?.reject(err);
    };
    socket.on('data', (chunk: Buffer) => {
      const w = waiting[i];
      if (!w) return fail(new Error('unexpected bytes from echo server'));
      w.remaining -= chunk.length;
      if (w.remaining <= 0) {
        waiting[i] = undefined;
        w.resolve();
      }
    });
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed during request')));
  });
  return (i: number, request: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? ABORTED());
      waiting[i] = { remaining: size, resolve, reject };
      sockets[i]!.write(request);
    });
}

export interface ConnRateOptions {
  dial: DialSpec;
  /** Connections being opened at once (default 8). */
  concurrency?: number;
  /** Measurement length (default 3000 ms). */
  durationMs?: number;
}

export interface ConnRateResult {
  connections: number;
  seconds: number;
  /** Completed connect + 1-byte echo + close per second. */
  perSecond: number;
  /** Time from connect() to the echoed byte, milliseconds. */
  setupMs: LatencySummary;
}

/**
 * New connections per second, as ztunnel's `connections` bench: each connection is opened,
 * carries one byte to a {@link startEcho} and back, and is closed; `concurrency` workers loop.
 */
export async function runConnRate(
  options: ConnRateOptions,
  signal?: AbortSignal,
): Promise<ConnRateResult> {
  const start = performance.now();
  const end = start + (options.durationMs ?? 3000);
  const setup: number[] = [];
  const one = Buffer.from('x');
  await Promise.all(
    Array.from({ length: options.concurrency ?? 8 }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const socket = await dial(options.dial, signal);
        try {
          socket.write(one);
          await readExact(socket, 1, signal);
          setup.push(performance.now() - t0);
          socket.end();
          await once(socket, 'close', { signal });
        } finally {
          socket.destroy();
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return {
    connections: setup.length,
    seconds,
    perSecond: setup.length / seconds,
    setupMs: summarize(setup),
  };
}

/** Connections held open by {@link openIdle}. */
export interface IdleConnections {
  count: number;
  close(): void;
}

/**
 * Open `count` connections to a {@link startEcho}, prove each with a 1-byte round trip, and
 * keep them open (to measure memory per idle tunnel). `concurrency` limits the opening burst.
 */
export async function openIdle(
  options: { dial: DialSpec; count: number; concurrency?: number },
  signal?: AbortSignal,
): Promise<IdleConnections> {
  const sockets: Socket[] = [];
  const close = () => {
    for (const s of sockets) s.destroy();
  };
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: options.concurrency ?? 32 }, async () => {
        while (next < options.count) {
          next++;
          const socket = await dial(options.dial, signal);
          sockets.push(socket);
          socket.write('i');
          await readExact(socket, 1, signal);
          socket.on('error', () => {});
        }
      }),
    );
  } catch (err) {
    close();
    throw err;
  }
  return { count: sockets.length, close };
}
