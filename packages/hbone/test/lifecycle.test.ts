import { SpiffeId } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient, type HboneError } from '../src/index.js';
import {
  App,
  CLIENT_ID,
  digestUntilEnd,
  type Env,
  eventually,
  fdCount,
  fdsBackTo,
  makeEnv,
  SERVER_ID,
} from './helpers/harness.js';
import { startFakeH2Server } from './helpers/raw-h2.js';

describe('HBONE lifecycle', () => {
  let env: Env | undefined;
  let app: App | undefined;
  afterEach(async () => {
    await env?.close();
    await app?.close();
    env = undefined;
    app = undefined;
  });

  async function start(client: Parameters<typeof makeEnv>[1] = {}) {
    app = new App();
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }), client);
    return env;
  }

  it('drains on close(): live tunnels keep working during the grace period, then are cancelled', async () => {
    await start();
    const baseline = fdCount();
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    let closedAt = 0;
    const closing = env!.server.close({ graceMs: 400 }).then(() => {
      closedAt = Date.now();
    });
    expect(env!.server.close()).toBe(env!.server.close());
    // Still alive inside the grace period.
    const gotBack = new Promise<string>((resolve) =>
      t.stream.once('data', (c: Buffer) => resolve(c.toString())),
    );
    t.stream.write('during grace');
    expect(await gotBack).toBe('during grace');
    const streamClosed = new Promise<void>((resolve) => t.stream.once('close', () => resolve()));
    await closing;
    await streamClosed;
    expect(closedAt).toBeGreaterThan(0);
    expect(env!.server.stats).toMatchObject({ sessions: 0, tunnels: 0, streams: 0 });
    env!.client.destroy();
    await fdsBackTo(baseline);
  });

  it('finishes close() as soon as the last tunnel ends, without waiting for the grace period', async () => {
    await start();
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    const closing = env!.server.close({ graceMs: 120_000 });
    const echoed = digestUntilEnd(t.stream);
    t.stream.end('bye');
    expect((await echoed).length).toBe(3);
    await closing; // would time the test out if it waited 120 s
    expect(env!.server.stats.sessions).toBe(0);
  });

  it('destroy() cuts live tunnels and refuses new work', async () => {
    await start();
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    t.stream.write('x');
    await eventually(() => app!.sockets.size === 1, 'app connected');
    const appSocket = [...app!.sockets][0]!;
    const appClosed = new Promise<void>((r) => appSocket.once('close', () => r()));
    const streamClosed = new Promise<void>((r) => t.stream.once('close', () => r()));
    env!.server.destroy();
    await Promise.all([appClosed, streamClosed]);
    await expect(env!.server.listen()).rejects.toMatchObject({ code: 'ERR_HBONE_CLOSED' });
  });

  it('client close() lets open tunnels finish and rejects new ones', async () => {
    await start();
    const t = await env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`));
    const closing = env!.client.close();
    await expect(
      env!.client.connect(env!.connectOpts(`127.0.0.1:${app!.port}`)),
    ).rejects.toMatchObject({
      code: 'ERR_HBONE_CLOSED',
    });
    const echoed = digestUntilEnd(t.stream);
    t.stream.end('last words');
    expect((await echoed).length).toBe(10);
    await closing;
    expect(env!.client.stats.connections).toBe(0);
  });

  it('drops a connection whose peer stops answering PINGs', async () => {
    // A fake HBONE server that answers CONNECT with 200 but never acknowledges a PING.
    env = await makeEnv(() => ({ type: 'refuse', status: 503 }));
    const fake = await startFakeH2Server(env.serverCert, { answerConnect: true });
    const port = fake.port;
    const client = new HboneClient({
      certificates: env.clientCert,
      pingIntervalMs: 100,
      pingTimeoutMs: 300,
    });
    try {
      const closes: (HboneError | undefined)[] = [];
      client.on('connection-close', (info) => closes.push(info.error));
      const t = await client.connect({
        authority: '10.0.0.1:80',
        via: { host: '127.0.0.1', port },
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [SERVER_ID],
      });
      await new Promise<void>((r) => t.stream.once('close', () => r()));
      await eventually(() => closes.length === 1, 'connection dropped');
      expect(closes[0]?.code).toBe('ERR_HBONE_PING_TIMEOUT');
      expect(client.stats.connections).toBe(0);
    } finally {
      client.destroy();
      await fake.close();
    }
  });
});
