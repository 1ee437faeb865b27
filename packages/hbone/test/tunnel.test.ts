import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectRequest, HboneError, type ServerTunnel } from '../src/index.js';
import {
  App,
  digestUntilEnd,
  type Env,
  eventually,
  makeEnv,
  randomBytes,
  sha256,
  writeAll,
} from './helpers/harness.js';
import { FRAME, frame, RawH2 } from './helpers/raw-h2.js';

const MiB = 1024 * 1024;

describe('HBONE tunnel', () => {
  let env: Env | undefined;
  let app: App | undefined;
  afterEach(async () => {
    await env?.close();
    await app?.close();
    env = undefined;
    app = undefined;
  });

  it('carries 64 MiB each way intact when the client half-closes first', {
    timeout: 60_000,
  }, async () => {
    const up = randomBytes(64 * MiB);
    const down = randomBytes(64 * MiB);
    let received: Promise<{ sha256: string; length: number }> | undefined;
    app = new App((s) => {
      received = digestUntilEnd(s);
      // Answer only after the client's FIN arrived: proves the other direction stays open.
      void received.then(() => writeAll(s, down));
    });
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }));
    const tunnel = await env.client.connect(env.connectOpts(`127.0.0.1:${appPort}`));
    const back = digestUntilEnd(tunnel.stream);
    await writeAll(tunnel.stream, up);
    const got = await received!;
    expect(got).toEqual({ sha256: sha256(up), length: up.length });
    expect(await back).toEqual({ sha256: sha256(down), length: down.length });
  });

  it('carries 64 MiB each way intact when the app half-closes first', {
    timeout: 60_000,
  }, async () => {
    const up = randomBytes(64 * MiB);
    const down = randomBytes(64 * MiB);
    let received: Promise<{ sha256: string; length: number }> | undefined;
    app = new App((s) => {
      received = digestUntilEnd(s);
      void writeAll(s, down);
    });
    const appPort = await app.listen();
    const closed: Promise<unknown>[] = [];
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }));
    env.server.on('tunnel-open', (t) => closed.push(t.closed));
    const tunnel = await env.client.connect(env.connectOpts(`127.0.0.1:${appPort}`));
    // Read everything the app sends (its FIN arrives as END_STREAM), only then send ours.
    expect(await digestUntilEnd(tunnel.stream)).toEqual({
      sha256: sha256(down),
      length: down.length,
    });
    await writeAll(tunnel.stream, up);
    expect(await received!).toEqual({ sha256: sha256(up), length: up.length });
    await eventually(() => closed.length === 1, 'tunnel-open');
    const info = (await closed[0]) as { bytesReceived: number; bytesSent: number; error?: unknown };
    expect(info.bytesReceived).toBe(up.length);
    expect(info.bytesSent).toBe(down.length);
    expect(info.error).toBeUndefined();
  });

  it('hands onConnect the peer identity, parsed authority, HBONE headers and addresses', async () => {
    let seen: ConnectRequest | undefined;
    env = await makeEnv((req) => {
      seen = req;
      return { type: 'refuse', status: 401, reason: 'policy' };
    });
    const err = await env.client
      .connect({
        ...env.connectOpts('[fd00::1]:8080'),
        baggage: 'k8s.namespace.name=src,service.name=client',
        forwarded: { for: { address: '10.0.0.7', port: 41234 }, host: 'svc.ns.svc.cluster.local' },
        forwardedNetwork: 'net-a',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HboneError);
    expect((err as HboneError).code).toBe('ERR_HBONE_HTTP_STATUS');
    expect((err as HboneError).status).toBe(401);
    expect(seen!.peer.identity.toString()).toBe('spiffe://cluster.local/ns/src/sa/client');
    expect(seen!.peer.certificate.serialNumber.toLowerCase()).toBe(env.clientCert.serialNumber);
    expect(seen!.authority).toEqual({ host: 'fd00::1', port: 8080, family: 6 });
    expect(seen!.headers.baggage).toBe('k8s.namespace.name=src,service.name=client');
    expect(seen!.headers.forwarded).toBe('for="10.0.0.7:41234";host=svc.ns.svc.cluster.local');
    expect(seen!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(seen!.headers.xForwardedNetwork).toBe('net-a');
    expect(seen!.localAddress).toBe('127.0.0.1');
    expect(seen!.localPort).toBe(env.port);
    expect(seen!.remoteAddress).toBe('127.0.0.1');
    expect(seen!.remotePort).toBeGreaterThan(0);
  });

  it('sends a fresh traceparent per tunnel', async () => {
    const seen: string[] = [];
    env = await makeEnv((req) => {
      seen.push(req.headers.traceparent ?? '');
      return { type: 'refuse', status: 503 };
    });
    for (let i = 0; i < 3; i++) {
      await env.client.connect(env.connectOpts('10.0.0.1:80')).catch(() => {});
    }
    expect(new Set(seen).size).toBe(3);
  });

  it.each([401, 503, 400])(
    'reports a refusal with status %i as ERR_HBONE_HTTP_STATUS',
    async (status) => {
      env = await makeEnv(() => ({ type: 'refuse', status }));
      const refused: number[] = [];
      env.server.on('refused', (r) => refused.push(r.status));
      await expect(env.client.connect(env.connectOpts('10.1.2.3:80'))).rejects.toMatchObject({
        code: 'ERR_HBONE_HTTP_STATUS',
        status,
      });
      expect(refused).toEqual([status]);
    },
  );

  it('answers 503 when the upstream dial fails, and 200 with response baggage when it works', async () => {
    app = new App();
    const appPort = await app.listen();
    const closedPort = await (async () => {
      const tmp = new App();
      const p = await tmp.listen();
      await tmp.close();
      return p;
    })();
    env = await makeEnv((req) => ({
      type: 'dial',
      host: '127.0.0.1',
      port: req.authority.port,
      baggage: 'k8s.namespace.name=dst,service.name=server',
    }));
    const refused: { status: number; code?: string }[] = [];
    env.server.on('refused', (r) => {
      const entry: { status: number; code?: string } = { status: r.status };
      if (r.error) entry.code = r.error.code;
      refused.push(entry);
    });
    await expect(
      env.client.connect(env.connectOpts(`127.0.0.1:${closedPort}`)),
    ).rejects.toMatchObject({
      code: 'ERR_HBONE_HTTP_STATUS',
      status: 503,
    });
    expect(refused).toEqual([{ status: 503, code: 'ERR_HBONE_UPSTREAM' }]);
    const tunnel = await env.client.connect(env.connectOpts(`127.0.0.1:${appPort}`));
    expect(tunnel.baggage).toBe('k8s.namespace.name=dst,service.name=server');
    expect(tunnel.peerIdentity.toString()).toBe('spiffe://cluster.local/ns/dst/sa/server');
    tunnel.stream.end('ping');
    expect((await digestUntilEnd(tunnel.stream)).length).toBe(4);
  });

  it.each([
    { name: 'CANCEL', code: 8, expected: 'eof' },
    { name: 'NO_ERROR', code: 0, expected: 'eof' },
    { name: 'INTERNAL_ERROR', code: 2, expected: 'reset' },
  ])(
    'turns a client RST_STREAM $name into $expected toward the app',
    async ({ code, expected }) => {
      const outcome = new Promise<{ data: string; how: string }>((resolve) => {
        app = new App((s) => {
          let data = '';
          s.on('data', (c: Buffer) => {
            data += c.toString();
          });
          s.once('end', () => resolve({ data, how: 'eof' }));
          s.once('error', () => resolve({ data, how: 'reset' }));
        });
      });
      const appPort = await app!.listen();
      env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }));
      // Raw frames: Node's own client sends END_STREAM before RST_STREAM on close().
      const raw = await RawH2.connect(env.port, env.clientCert);
      await eventually(
        () => raw.count(FRAME.SETTINGS, (f) => (f.flags & 1) === 1) > 0,
        'SETTINGS ack',
      );
      raw.headers(1, [
        [':method', 'CONNECT'],
        [':authority', `127.0.0.1:${appPort}`],
      ]);
      await eventually(() => raw.count(FRAME.HEADERS, (f) => f.streamId === 1) > 0, '200 response');
      raw.write(frame(FRAME.DATA, 0, 1, Buffer.from('abc')));
      await new Promise((r) => setTimeout(r, 100));
      const rst = Buffer.alloc(4);
      rst.writeUInt32BE(code);
      raw.write(frame(FRAME.RST_STREAM, 0, 1, rst));
      const got = await outcome;
      raw.destroy();
      expect(got.how).toBe(expected);
      expect(got.data).toBe('abc');
    },
  );

  it('uses a custom connect function and lets the embedder destroy a live tunnel', async () => {
    app = new App((s) => s.resume());
    const appPort = await app.listen();
    const dialed: string[] = [];
    env = await makeEnv(() => ({
      type: 'dial',
      host: '127.0.0.1',
      port: appPort,
      context: { policy: 'allow-all' },
      connect: (target, { request }) =>
        new Promise<Duplex>((resolve, reject) => {
          dialed.push(`${request.rawAuthority} -> ${target.host}:${target.port}`);
          const s: Socket = netConnect({
            host: target.host,
            port: target.port,
            allowHalfOpen: true,
          });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    }));
    const opened: ServerTunnel[] = [];
    const closeEvents: unknown[] = [];
    const onOpen = (m: unknown) => closeEvents.push(['open', m]);
    const onClose = (m: unknown) => closeEvents.push(['close', m]);
    subscribe('mesh:hbone:tunnel-open', onOpen);
    subscribe('mesh:hbone:tunnel-close', onClose);
    try {
      env.server.on('tunnel-open', (t) => opened.push(t));
      const tunnel = await env.client.connect(env.connectOpts('10.9.9.9:1234'));
      tunnel.stream.write(Buffer.alloc(1000));
      await eventually(
        () => opened.length === 1 && opened[0]!.bytesReceived === 1000,
        'bytes counted',
      );
      expect(dialed).toEqual([`10.9.9.9:1234 -> 127.0.0.1:${appPort}`]);
      expect(opened[0]!.context).toEqual({ policy: 'allow-all' });
      expect(env.server.stats.tunnels).toBe(1);
      const ended = new Promise<void>((resolve) => tunnel.stream.once('close', () => resolve()));
      // A policy change revokes the tunnel: the client sees its stream go away.
      opened[0]!.destroy();
      await ended;
      const info = await opened[0]!.closed;
      expect(info.bytesReceived).toBe(1000);
      await eventually(() => env!.server.stats.tunnels === 0, 'tunnel forgotten');
      expect(closeEvents.map((e) => (e as unknown[])[0])).toEqual(['open', 'close']);
    } finally {
      unsubscribe('mesh:hbone:tunnel-open', onOpen);
      unsubscribe('mesh:hbone:tunnel-close', onClose);
    }
  });
});
