import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ConnectDecision,
  type ConnectRequest,
  HboneClient,
  type HboneError,
} from '../src/index.js';
import {
  App,
  digestUntilEnd,
  type Env,
  eventually,
  fdCount,
  fdsBackTo,
  makeEnv,
} from './helpers/harness.js';
import { FRAME, frame, RawH2 } from './helpers/raw-h2.js';

describe('HBONE server under bad input', () => {
  let env: Env | undefined;
  let app: App | undefined;
  let calls: ConnectRequest[];
  let errors: HboneError[];
  let baseline: number;
  let hold = false;

  afterEach(async () => {
    await env?.close();
    await app?.close();
    env = undefined;
    app = undefined;
    hold = false;
  });

  async function start(server: Parameters<typeof makeEnv>[1] = {}) {
    app = new App();
    const appPort = await app.listen();
    calls = [];
    env = await makeEnv((req) => {
      calls.push(req);
      if (!hold) return { type: 'dial', host: '127.0.0.1', port: appPort };
      // Park the stream until it goes away.
      return new Promise<ConnectDecision>((_, reject) =>
        req.signal.addEventListener('abort', () => reject(req.signal.reason)),
      );
    }, server);
    errors = [];
    env.server.on('connection-error', (e) => errors.push(e));
    baseline = fdCount();
    return env;
  }

  /** A well-behaved tunnel still works: the server was not disturbed. */
  async function stillServes(): Promise<void> {
    hold = false;
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    const echoed = digestUntilEnd(t.stream);
    t.stream.end('alive');
    expect((await echoed).length).toBe(5);
  }

  async function done(): Promise<void> {
    env!.client.destroy();
    await eventually(() => env!.server.stats.sessions === 0, 'sessions closed');
    await fdsBackTo(baseline);
  }

  function nodeClient(): Promise<ClientHttp2Session> {
    const cert = env!.clientCert;
    return new Promise((resolve, reject) => {
      const s = h2connect(`https://127.0.0.1:${env!.port}`, {
        ca: [...cert.roots],
        key: cert.privateKey,
        cert: [cert.leaf, ...cert.intermediates].join(''),
        checkServerIdentity: () => undefined,
      });
      s.once('remoteSettings', () => resolve(s));
      s.once('error', reject);
    });
  }

  /** The response status, or 'reset' when the stream was reset before any response. */
  function statusOf(
    session: ClientHttp2Session,
    headers: Record<string, string>,
  ): Promise<number | 'reset'> {
    return new Promise((resolve) => {
      const req = session.request(headers, { endStream: headers[':method'] !== 'CONNECT' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', () => resolve('reset'));
      req.on('close', () => resolve('reset'));
      req.resume();
    });
  }

  it('answers 400 to methods other than CONNECT', async () => {
    await start();
    const s = await nodeClient();
    expect(
      await statusOf(s, {
        ':method': 'GET',
        ':path': '/',
        ':scheme': 'https',
        ':authority': '1.2.3.4:80',
      }),
    ).toBe(400);
    expect(
      await statusOf(s, {
        ':method': 'POST',
        ':path': '/',
        ':scheme': 'https',
        ':authority': '1.2.3.4:80',
      }),
    ).toBe(400);
    expect(calls).toHaveLength(0);
    s.destroy();
    await stillServes();
    await done();
  });

  it.each([
    'no-port',
    '1.2.3.4',
    '[::1]',
    '::1:80',
    '1.2.3.4:0',
    '1.2.3.4:65536',
    '1.2.3.4:80x',
    '[zz::1]:80',
    'bad host:80',
    '-leading.dash:80',
  ])('answers 400 to the malformed authority %j', async (authority) => {
    await start();
    const s = await nodeClient();
    // nghttp2 itself resets authorities with forbidden characters; the rest get our 400.
    const expected = authority.includes(' ') ? 'reset' : 400;
    expect(await statusOf(s, { ':method': 'CONNECT', ':authority': authority })).toBe(expected);
    expect(calls).toHaveLength(0);
    s.destroy();
    await done();
  });

  it('rejects extended CONNECT (RFC 8441 :protocol) without calling the embedder', async () => {
    await start();
    const raw = await RawH2.connect(env!.port, env!.clientCert);
    await eventually(() => raw.count(FRAME.SETTINGS) > 0, 'server SETTINGS');
    raw.headers(1, [
      [':method', 'CONNECT'],
      [':protocol', 'websocket'],
      [':scheme', 'https'],
      [':path', '/'],
      [':authority', '1.2.3.4:80'],
    ]);
    await eventually(
      () =>
        raw.count(FRAME.RST_STREAM) + raw.count(FRAME.HEADERS) + raw.count(FRAME.GOAWAY) > 0 ||
        raw.closed,
      'rejection',
    );
    expect(calls).toHaveLength(0);
    raw.destroy();
    await stillServes();
    await done();
  });

  it('rejects a header block larger than the advertised 64 KiB', async () => {
    // nghttp2 answers with GOAWAY and stops reading; the keepalive then reclaims the socket.
    await start({ server: { pingIntervalMs: 200, pingTimeoutMs: 400 } });
    const raw = await RawH2.connect(env!.port, env!.clientCert);
    await eventually(
      () => raw.count(FRAME.SETTINGS, (f) => (f.flags & 1) === 1) > 0,
      'SETTINGS ack',
    );
    raw.headers(1, [
      [':method', 'CONNECT'],
      [':authority', '1.2.3.4:80'],
      ['x-big', 'a'.repeat(200 * 1024)],
    ]);
    await eventually(
      () =>
        raw.count(FRAME.RST_STREAM) + raw.count(FRAME.GOAWAY) + raw.count(FRAME.HEADERS) > 0 ||
        raw.closed,
      'rejection',
    );
    expect(calls).toHaveLength(0);
    raw.destroy();
    await stillServes();
    await done();
  });

  it('drops a connection that opens more than the advertised 200 concurrent streams', async () => {
    await start();
    hold = true;
    const refused: number[] = [];
    env!.server.on('refused', (r) => refused.push(r.status));
    const raw = await RawH2.connect(env!.port, env!.clientCert);
    await eventually(
      () => raw.count(FRAME.SETTINGS, (f) => (f.flags & 1) === 1) > 0,
      'SETTINGS ack',
    );
    for (let i = 0; i < 210; i++) {
      raw.headers(1 + 2 * i, [
        [':method', 'CONNECT'],
        [':authority', `10.0.0.1:${1000 + i}`],
      ]);
    }
    // Past the acknowledged limit nghttp2 treats the connection as broken (PROTOCOL_ERROR).
    await eventually(() => raw.closed || raw.count(FRAME.GOAWAY) > 0, 'connection dropped');
    expect(calls.length).toBeLessThanOrEqual(200);
    await eventually(() => env!.server.stats.streams === 0, 'parked streams released');
    // Streams that vanished are not reported as refusals.
    expect(refused).toEqual([]);
    raw.destroy();
    await eventually(() => env!.server.stats.streams === 0, 'streams released');
    await stillServes();
    await done();
  });

  it('survives a rapid-reset flood (HEADERS + RST_STREAM x 5,000)', async () => {
    await start();
    hold = true;
    const raw = await RawH2.connect(env!.port, env!.clientCert);
    await eventually(() => raw.count(FRAME.SETTINGS) > 0, 'server SETTINGS');
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(8);
    for (let i = 0; i < 5000; i++) {
      const sid = 1 + 2 * i;
      raw.headers(sid, [
        [':method', 'CONNECT'],
        [':authority', '10.0.0.1:80'],
      ]);
      raw.write(frame(FRAME.RST_STREAM, 0, sid, rst));
    }
    await eventually(() => raw.closed || env!.server.stats.streams === 0, 'flood absorbed', 20_000);
    raw.destroy();
    await eventually(() => env!.server.stats.streams === 0, 'streams released');
    await stillServes();
    await done();
  });

  it.each([
    ['PING', () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))],
    ['SETTINGS', () => frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 1, 0, 0]))],
  ])('survives a %s flood from a peer that never reads', async (_name, make) => {
    await start();
    const raw = await RawH2.connect(env!.port, env!.clientCert);
    await eventually(() => raw.count(FRAME.SETTINGS) > 0, 'server SETTINGS');
    raw.socket.pause();
    const burst = Buffer.concat(Array.from({ length: 1000 }, make));
    for (let i = 0; i < 50 && !raw.closed; i++) {
      raw.write(burst);
      await new Promise((r) => setImmediate(r));
    }
    raw.socket.resume();
    raw.destroy();
    await stillServes();
    await done();
  });

  it('times out a TLS handshake that never starts', async () => {
    await start({ server: { handshakeTimeoutMs: 300 } });
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: env!.port });
      s.on('error', () => {});
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await eventually(
      () => errors.some((e) => e.code === 'ERR_HBONE_TLS'),
      'handshake timeout reported',
    );
    await stillServes();
    await done();
  });

  it('rejects plaintext and HTTP/1.1-only clients', async () => {
    await start();
    await new Promise<void>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: env!.port }, () =>
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const cert = env!.clientCert;
      const s = tlsConnect({
        host: '127.0.0.1',
        port: env!.port,
        ALPNProtocols: ['http/1.1'],
        ca: [...cert.roots],
        key: cert.privateKey,
        cert: [cert.leaf, ...cert.intermediates].join(''),
        rejectUnauthorized: false,
      });
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    expect(errors.length).toBeGreaterThanOrEqual(2);
    await stillServes();
    await done();
  });

  it('cleans up when the client vanishes mid-stream', async () => {
    await start();
    const appClosed: Promise<void>[] = [];
    app!.server.on('connection', (s) =>
      appClosed.push(new Promise((r) => s.once('close', () => r()))),
    );
    let tcp: Socket | undefined;
    const client = new HboneClient({
      certificates: env!.clientCert,
      createSocket: ({ host, port }) => {
        tcp = netConnect({ host, port });
        return tcp;
      },
    });
    const t = await client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    t.stream.write(Buffer.alloc(256 * 1024));
    await eventually(() => env!.server.stats.tunnels === 1, 'tunnel up');
    const closedInfo = [...env!.server.tunnels()][0]!.closed;
    // The peer vanishes: TCP reset under the session, no RST_STREAM or GOAWAY.
    tcp!.resetAndDestroy();
    client.destroy();
    const info = await closedInfo;
    expect(info.error).toBeDefined();
    await Promise.all(appClosed);
    expect(env!.server.stats.tunnels).toBe(0);
    await done();
  });

  it('resets the tunnel when the app vanishes mid-stream', async () => {
    await start();
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    t.stream.write('x');
    await eventually(() => app!.sockets.size === 1, 'app connected');
    const closed = new Promise<number | undefined>((r) =>
      t.stream.once('close', () => r(t.stream.rstCode)),
    );
    for (const s of app!.sockets) s.resetAndDestroy();
    // RST_STREAM CONNECT_ERROR (RFC 9113 §8.5), not a clean end.
    expect(await closed).toBe(10);
    await stillServes();
    await done();
  });
});
